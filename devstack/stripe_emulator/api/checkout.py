"""`/v1/checkout/sessions` in subscription mode (line_items, or a pricing plan in checkout_items) and their
line items. Completion happens on the hosted page (`pages/checkout_page.py`)."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.domain.catalog import Catalog
from devstack.stripe_emulator.domain.checkout_sessions import CheckoutSessions, SessionTerms
from devstack.stripe_emulator.errors import StripeError, invalid, missing_param
from devstack.stripe_emulator.forms import as_int, as_list
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate

MIN_TRIAL_DAYS = 2  # Checkout requires trials of at least 48 hours
PLAN_PARAM = "checkout_items[0][pricing_plan_subscription_item][pricing_plan]"
LIST_FILTERS = ("customer", "subscription", "status", "client_reference_id")


def is_preview_version(version: str) -> bool:
    return ".preview" in version or "preview" in version.split(";", 1)[0]


def _mode(p: dict[str, Any]) -> str:
    mode = p.get("mode")
    if not mode:
        raise missing_param("mode")
    if mode != "subscription":
        raise invalid("Only mode=subscription is emulated.", param="mode")
    if not p.get("success_url") and p.get("ui_mode", "hosted") == "hosted":
        raise missing_param("success_url")
    return str(mode)


def _trial_days(p: dict[str, Any]) -> int | None:
    sub_data = p.get("subscription_data") or {}
    if sub_data.get("trial_period_days") in (None, ""):
        return None
    trial_days = as_int(sub_data["trial_period_days"], "subscription_data[trial_period_days]")
    if trial_days < MIN_TRIAL_DAYS:
        raise invalid(
            "The `trial_period_days` parameter must be at least 2 (Checkout requires trials of at least 48 hours).",
            param="subscription_data[trial_period_days]",
        )
    return trial_days


class CheckoutSessionsApi:
    def __init__(self, store: Store, catalog: Catalog, sessions: CheckoutSessions) -> None:
        self.store = store
        self.catalog = catalog
        self.sessions = sessions

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/checkout/sessions", self.create),
            RouteSpec("GET", "/v1/checkout/sessions", self.list_),
            RouteSpec("GET", "/v1/checkout/sessions/{id}", self.retrieve),
            RouteSpec("GET", "/v1/checkout/sessions/{id}/line_items", self.list_line_items),
            RouteSpec("POST", "/v1/checkout/sessions/{id}/expire", self.expire),
        ]

    # ---- create -----------------------------------------------------------------------------------------

    def create(self, req: Request) -> Obj:
        p = req.params
        terms = SessionTerms(mode=_mode(p))
        terms.checkout_items = as_list(p.get("checkout_items"))
        if terms.checkout_items and p.get("line_items"):
            raise invalid(
                "You may only specify one of these parameters: checkout_items, line_items.", param="checkout_items"
            )
        if terms.checkout_items:
            terms.plan_id = self._pricing_plan(terms.checkout_items, req.stripe_version)
        else:
            terms.items = self._line_items(p)
        terms.trial_days = _trial_days(p)
        terms.customer = p.get("customer")
        if terms.customer:
            self.store.get(str(terms.customer), "customer", "customer")
        if terms.customer and p.get("customer_email"):
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.", param="customer_email"
            )
        cs = self.sessions.open(p, terms, req.base_url, req.stripe_version)
        return self.store.render(cs, req.expand)

    def _pricing_plan(self, checkout_items: list[Any], stripe_version: str) -> str:
        if not is_preview_version(stripe_version):
            raise invalid(
                "checkout_items is only available on preview API versions: send a Stripe-Version header "
                "ending in `.preview`.",
                param="checkout_items",
            )
        first = checkout_items[0]
        if not isinstance(first, dict) or first.get("type") != "pricing_plan_subscription_item":
            raise invalid("Unsupported checkout item type.", param="checkout_items[0][type]")
        plan_id = str((first.get("pricing_plan_subscription_item") or {}).get("pricing_plan") or "")
        if not plan_id:
            raise missing_param(PLAN_PARAM)
        plan = self.store.find(plan_id)
        if plan is None or plan["object"] != "v2.billing.pricing_plan":
            raise StripeError(404, f"No such pricing plan: '{plan_id}'", code="resource_missing", param=PLAN_PARAM)
        return plan_id

    def _line_items(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        items = [self._line_item(i, li) for i, li in enumerate(as_list(p.get("line_items")))]
        if not items:
            raise missing_param("line_items")
        return items

    def _line_item(self, i: int, li: Any) -> dict[str, Any]:
        param = f"line_items[{i}]"
        if not isinstance(li, dict) or not li.get("price"):
            raise invalid("Each line item needs a price.", param=f"{param}[price]")
        price = self.catalog.price(str(li["price"]), f"{param}[price]")
        if not price["active"]:
            raise invalid(f"The price '{price['id']}' is not active.", param=f"{param}[price]")
        if price["type"] != "recurring":
            raise invalid(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                param=f"{param}[price]",
            )
        metered = (price.get("recurring") or {}).get("usage_type") == "metered"
        qty = None if metered else as_int(li.get("quantity", 1), f"{param}[quantity]")
        if qty is not None and qty < 1:
            raise invalid("Quantity must be at least 1.", param=f"{param}[quantity]")
        if metered and li.get("quantity") not in (None, ""):
            raise invalid("Quantity should not be specified where usage_type is `metered`.", param=f"{param}[quantity]")
        return {"id": new_id("li", 24), "price": price["id"], "quantity": qty}

    # ---- read, expire -----------------------------------------------------------------------------------

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "checkout.session"), req.expand)

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("checkout.session")
        for key in LIST_FILTERS:
            if req.params.get(key):
                objs = [o for o in objs if o.get(key) == req.params[key]]
        return paginate(self.store, objs, req.params, "/v1/checkout/sessions", req.expand)

    def list_line_items(self, req: Request) -> Obj:
        cs = self.store.get(req.path_params["id"], "checkout.session")
        items = self.sessions.line_items_of(cs)
        items.reverse()
        return paginate(self.store, items, req.params, f"/v1/checkout/sessions/{cs['id']}/line_items", req.expand)

    def expire(self, req: Request) -> Obj:
        cs = self.store.get(req.path_params["id"], "checkout.session")
        if cs["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f'Session has a status of "{cs["status"]}".',
                param="session",
            )
        self.sessions.expire(cs)
        return self.store.render(cs, req.expand)
