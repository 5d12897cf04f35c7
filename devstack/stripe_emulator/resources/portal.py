"""Billing portal configurations and sessions (the hosted portal itself is in `pages.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator

FLOW_TYPES = ("payment_method_update", "subscription_cancel", "subscription_update", "subscription_update_confirm")


def make_configuration(
    emu: StripeEmulator, params: dict[str, Any], oid: str | None = None, is_default: bool = False
) -> Obj:
    features = params.get("features") or {}
    upd = features.get("subscription_update") or {}
    cancel = features.get("subscription_cancel") or {}
    now = emu.clock.now_int()

    def enabled(section: dict[str, Any]) -> bool:
        return str(section.get("enabled", "false")).lower() == "true" or section.get("enabled") is True

    products = [
        {"product": p.get("product"), "prices": list(p.get("prices") or []), "adjustable_quantity": None}
        for p in (upd.get("products") or [])
    ]
    conf: Obj = {
        "id": oid or new_id("bpc", 24),
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": params.get("business_profile") or {"headline": None},
        "created": now,
        "default_return_url": params.get("default_return_url"),
        "features": {
            "customer_update": {"allowed_updates": [], "enabled": False},
            "invoice_history": {"enabled": True},
            "payment_method_update": {
                "enabled": enabled(features.get("payment_method_update") or {"enabled": True}),
                "payment_method_configuration": None,
            },
            "subscription_cancel": {
                "cancellation_reason": {"enabled": False, "options": []},
                "enabled": enabled(cancel) if cancel else False,
                "mode": cancel.get("mode", "at_period_end"),
                "proration_behavior": cancel.get("proration_behavior", "none"),
            },
            "subscription_update": {
                "default_allowed_updates": list(upd.get("default_allowed_updates") or []),
                "enabled": enabled(upd) if upd else False,
                "products": products,
                "proration_behavior": upd.get("proration_behavior", "create_prorations"),
                "schedule_at_period_end": {"conditions": []},
                "trial_update_behavior": "end_trial",
            },
        },
        "is_default": is_default,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": dict(params.get("metadata") or {}),
        "name": params.get("name"),
        "updated": now,
    }
    return emu.store.put(conf)


def register(emu: StripeEmulator) -> None:
    store = emu.store

    def create_session(req: Request) -> Obj:
        p = req.params
        if not p.get("customer"):
            raise missing_param("customer")
        customer = store.get(str(p["customer"]), "customer", "customer")
        conf_id = p.get("configuration") or next(
            (c["id"] for c in store.all("billing_portal.configuration") if c["is_default"]), None
        )
        conf = store.get(str(conf_id), "billing_portal.configuration", "configuration")
        flow_data = p.get("flow_data")
        flow = None
        if flow_data:
            ftype = flow_data.get("type")
            if ftype not in FLOW_TYPES:
                raise invalid(f"Invalid flow_data[type]: {ftype}", param="flow_data[type]")
            if ftype in ("subscription_cancel", "subscription_update", "subscription_update_confirm"):
                section = flow_data.get(ftype) or {}
                sub_id = section.get("subscription")
                if not sub_id:
                    raise missing_param(f"flow_data[{ftype}][subscription]")
                sub = store.get(str(sub_id), "subscription", f"flow_data[{ftype}][subscription]")
                if sub["customer"] != customer["id"]:
                    raise invalid(
                        "The subscription does not belong to this customer.", param=f"flow_data[{ftype}][subscription]"
                    )
                if ftype == "subscription_update" and not conf["features"]["subscription_update"]["enabled"]:
                    raise invalid("Subscription updates are disabled in this configuration.", param="flow_data[type]")
            after = flow_data.get("after_completion") or {"type": "portal_homepage"}
            flow = {
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
        bps_id = new_id("bps", 24)
        session: Obj = {
            "id": bps_id,
            "object": "billing_portal.session",
            "configuration": conf["id"],
            "created": emu.clock.now_int(),
            "customer": customer["id"],
            "flow": flow,
            "livemode": False,
            "locale": p.get("locale"),
            "on_behalf_of": None,
            "return_url": p.get("return_url") or conf["default_return_url"],
            "url": f"{req.base_url}/p/session/{bps_id}",
        }
        store.put(session)
        return store.render(session, req.expand)

    def create_conf(req: Request) -> Obj:
        return store.render(make_configuration(emu, req.params), req.expand)

    def get_conf(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "billing_portal.configuration"), req.expand)

    def update_conf(req: Request) -> Obj:
        conf = store.get(req.path_params["id"], "billing_portal.configuration")
        fresh = make_configuration(emu, {**req.params}, oid=conf["id"], is_default=conf["is_default"])
        return store.render(fresh, req.expand)

    def list_conf(req: Request) -> Obj:
        return paginate(
            store,
            store.all("billing_portal.configuration"),
            req.params,
            "/v1/billing_portal/configurations",
            req.expand,
        )

    r = emu.router
    r.add("POST", "/v1/billing_portal/sessions", create_session)
    r.add("POST", "/v1/billing_portal/configurations", create_conf)
    r.add("GET", "/v1/billing_portal/configurations", list_conf)
    r.add("GET", "/v1/billing_portal/configurations/{id}", get_conf)
    r.add("POST", "/v1/billing_portal/configurations/{id}", update_conf)
