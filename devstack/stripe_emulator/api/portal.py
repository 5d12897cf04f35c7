"""`/v1/billing_portal/configurations` and `/v1/billing_portal/sessions` (the hosted portal is in `pages/`)."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.domain.portal import FLOW_TYPES, PortalConfigurations
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_bool
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate

SUBSCRIPTION_FLOWS = ("subscription_cancel", "subscription_update", "subscription_update_confirm")


class PortalApi:
    def __init__(self, store: Store, clock: Clock, configurations: PortalConfigurations) -> None:
        self.store = store
        self.clock = clock
        self.configurations = configurations

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/billing_portal/sessions", self.create_session),
            RouteSpec("POST", "/v1/billing_portal/configurations", self.create_configuration),
            RouteSpec("GET", "/v1/billing_portal/configurations", self.list_configurations),
            RouteSpec("GET", "/v1/billing_portal/configurations/{id}", self.retrieve_configuration),
            RouteSpec("POST", "/v1/billing_portal/configurations/{id}", self.update_configuration),
        ]

    # ---- sessions ---------------------------------------------------------------------------------------

    def create_session(self, req: Request) -> Obj:
        p = req.params
        if not p.get("customer"):
            raise missing_param("customer")
        customer = self.store.get(str(p["customer"]), "customer", "customer")
        conf_id = p.get("configuration") or self.configurations.default_id()
        if conf_id is None:
            raise invalid(
                "No configuration provided and your test mode default configuration has not been created. Provide "
                "a configuration or create your default by saving your customer portal settings in test mode.",
                param="configuration",
            )
        conf = self.store.get(str(conf_id), "billing_portal.configuration", "configuration")
        if not conf["active"]:
            raise invalid(f"The configuration {conf['id']} is not active.", param="configuration")
        flow_data = p.get("flow_data")
        flow = self._flow(flow_data, customer, conf) if flow_data else None
        bps_id = new_id("bps", 24)
        session: Obj = {
            "id": bps_id,
            "object": "billing_portal.session",
            "configuration": conf["id"],
            "created": self.clock.now_int(),
            "customer": customer["id"],
            "customer_account": None,
            "flow": flow,
            "livemode": False,
            "locale": p.get("locale"),
            "on_behalf_of": None,
            "return_url": p.get("return_url") or conf["default_return_url"],
            "url": f"{req.base_url}/p/session/{bps_id}",
        }
        self.store.put(session)
        return self.store.render(session, req.expand)

    def _flow(self, flow_data: dict[str, Any], customer: Obj, conf: Obj) -> Obj:
        ftype = flow_data.get("type")
        if ftype not in FLOW_TYPES:
            raise invalid(f"Invalid flow_data[type]: {ftype}", param="flow_data[type]")
        if ftype in SUBSCRIPTION_FLOWS:
            self._check_flow_subscription(flow_data, str(ftype), customer, conf)
        after = flow_data.get("after_completion") or {"type": "portal_homepage"}
        return {
            "type": ftype,
            "after_completion": {
                "type": after.get("type", "portal_homepage"),
                "redirect": after.get("redirect"),
                "hosted_confirmation": after.get("hosted_confirmation"),
            },
            "subscription_cancel": flow_data.get("subscription_cancel"),
            "subscription_update": flow_data.get("subscription_update"),
            "subscription_update_confirm": flow_data.get("subscription_update_confirm"),
        }

    def _check_flow_subscription(self, flow_data: dict[str, Any], ftype: str, customer: Obj, conf: Obj) -> None:
        param = f"flow_data[{ftype}][subscription]"
        sub_id = (flow_data.get(ftype) or {}).get("subscription")
        if not sub_id:
            raise missing_param(param)
        sub = self.store.get(str(sub_id), "subscription", param)
        if sub["customer"] != customer["id"]:
            raise invalid("The subscription does not belong to this customer.", param=param)
        if ftype == "subscription_update" and not conf["features"]["subscription_update"]["enabled"]:
            raise invalid("Subscription updates are disabled in this configuration.", param="flow_data[type]")

    # ---- configurations ---------------------------------------------------------------------------------

    def create_configuration(self, req: Request) -> Obj:
        return self.store.render(self.configurations.make(req.params), req.expand)

    def retrieve_configuration(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "billing_portal.configuration"), req.expand)

    def update_configuration(self, req: Request) -> Obj:
        conf = self.store.get(req.path_params["id"], "billing_portal.configuration")
        return self.store.render(self.configurations.apply(conf, req.params), req.expand)

    def list_configurations(self, req: Request) -> Obj:
        objs = self.store.all("billing_portal.configuration")
        for flag in ("active", "is_default"):
            if flag in req.params:
                objs = [o for o in objs if o[flag] == as_bool(req.params[flag])]
        return paginate(self.store, objs, req.params, "/v1/billing_portal/configurations", req.expand)
