"""The customer portal: configurations, and what the hosted portal's buttons do (cancel, resume, switch plan,
update card)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import invalid, missing_param, not_found
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.forms import as_bool, merge_metadata
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff
from .dunning import Dunning
from .invoices import Invoices
from .payment_methods import PaymentMethods
from .proration import Proration
from .subscriptions import Subscriptions, first_item

FLOW_TYPES = ("payment_method_update", "subscription_cancel", "subscription_update", "subscription_update_confirm")


def allowed_prices(conf: Obj, store: Store | None = None) -> list[str]:
    """The prices a configuration lets customers switch to (with ``store``: only those still active)."""
    out: list[str] = []
    for product in conf["features"]["subscription_update"]["products"]:
        for price_id in product["prices"]:
            price = store.find(price_id) if store is not None else None
            if store is None or (price is not None and price["active"]):
                out.append(price_id)
    return out


class PortalConfigurations:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def make(self, params: dict[str, Any], oid: str | None = None, is_default: bool = False) -> Obj:
        """A configuration from `POST /v1/billing_portal/configurations` params."""
        if not isinstance(params.get("features"), dict):
            raise missing_param("features")
        now = self.clock.now_int()
        conf: Obj = {
            "id": oid or new_id("bpc", 24),
            "object": "billing_portal.configuration",
            "active": True,
            "application": None,
            "business_profile": {"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
            "created": now,
            "default_return_url": None,
            "features": {
                "customer_update": {"allowed_updates": [], "enabled": False},
                "invoice_history": {"enabled": False},
                "payment_method_update": {"enabled": False, "payment_method_configuration": None},
                "subscription_cancel": {
                    "cancellation_reason": {"enabled": False, "options": []},
                    "enabled": False,
                    "mode": "at_period_end",
                    "proration_behavior": "none",
                },
                "subscription_update": {
                    "default_allowed_updates": [],
                    "enabled": False,
                    "products": [],
                    "proration_behavior": "none",
                    "schedule_at_period_end": {"conditions": []},
                    "trial_update_behavior": "end_trial",
                },
            },
            "is_default": is_default,
            "livemode": False,
            "login_page": {"enabled": False, "url": None},
            "metadata": {},
            "name": None,
            "updated": now,
        }
        self.apply(conf, params)
        return self.store.put(conf)

    def apply(self, conf: Obj, params: dict[str, Any]) -> Obj:
        """Create or update: only the sections and fields given change (Stripe's update semantics)."""
        if "active" in params:
            conf["active"] = as_bool(params["active"])
        for key in ("default_return_url", "name"):
            if key in params:
                conf[key] = params[key] or None
        if isinstance(params.get("business_profile"), dict):
            conf["business_profile"].update({k: v or None for k, v in params["business_profile"].items()})
        if "metadata" in params:
            conf["metadata"] = merge_metadata(conf["metadata"], params["metadata"])
        for section, given in (params.get("features") or {}).items():
            current = conf["features"].get(section)
            if current is None or not isinstance(given, dict):
                raise invalid(f"Received unknown parameter: features[{section}]", param=f"features[{section}]")
            self._section(section, current, given)
        conf["updated"] = self.clock.now_int()
        return conf

    def _section(self, section: str, current: dict[str, Any], given: dict[str, Any]) -> None:
        for key, value in given.items():
            if key == "enabled":
                current["enabled"] = as_bool(value)
            elif key == "products":
                current["products"] = self._products(value)
            elif key == "default_allowed_updates":
                current[key] = [str(v) for v in (value or [])]
            elif key in current:
                current[key] = value
            else:
                raise invalid(f"Received unknown parameter: features[{section}][{key}]", param=f"features[{section}]")

    def _products(self, products: Any) -> list[Obj]:
        """Stripe checks each product and its prices: recurring, active, and the product's own."""
        out: list[Obj] = []
        for index, entry in enumerate(products or []):
            param = f"features[subscription_update][products][{index}]"
            product = self.store.get(str(entry.get("product")), "product", f"{param}[product]")
            prices = [str(p) for p in (entry.get("prices") or [])]
            if not prices:
                raise missing_param(f"{param}[prices]")
            for price_id in prices:
                price = self.store.find(price_id)
                if price is None or price["object"] != "price":
                    raise not_found("price", price_id, f"{param}[prices]")
                if price["product"] != product["id"]:
                    raise invalid(f"The price {price_id} does not belong to product {product['id']}.", param=param)
                if not price["active"] or price["type"] != "recurring":
                    raise invalid(f"The price {price_id} must be an active recurring price.", param=param)
            quantity = entry.get("adjustable_quantity") or {}
            out.append(
                {
                    "adjustable_quantity": {
                        "enabled": as_bool(quantity.get("enabled")),
                        "maximum": int(quantity["maximum"]) if quantity.get("maximum") not in (None, "") else None,
                        "minimum": int(quantity["minimum"]) if quantity.get("minimum") not in (None, "") else 0,
                    },
                    "prices": prices,
                    "product": product["id"],
                }
            )
        return out

    def default_id(self) -> str | None:
        return next((c["id"] for c in self.store.all("billing_portal.configuration") if c["is_default"]), None)


class PortalActions:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        time: BusinessTime,
        payment_methods: PaymentMethods,
        invoices: Invoices,
        subscriptions: Subscriptions,
        proration: Proration,
        dunning: Dunning,
    ) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.payment_methods = payment_methods
        self.invoices = invoices
        self.subscriptions = subscriptions
        self.proration = proration
        self.dunning = dunning

    def cancel_or_resume(self, sub: Obj, cancel: bool, conf: Obj) -> None:
        """Cancel (now or at period end, per the configuration) or undo a cancellation at period end."""
        before = copy.deepcopy(sub)
        if cancel and conf["features"]["subscription_cancel"]["mode"] == "immediately":
            self.subscriptions.cancel(sub)
            return
        sub["cancel_at_period_end"] = cancel
        sub["cancel_at"] = first_item(sub)["current_period_end"] if cancel else None
        sub["canceled_at"] = self.time.now() if cancel else None
        if cancel:
            sub["cancellation_details"]["reason"] = "cancellation_requested"
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))

    def switch(self, sub: Obj, price_id: str, conf: Obj) -> None:
        """Switch the first item to `price_id`, prorated per the configuration."""
        item = first_item(sub)
        changes, pdate = self.proration.plan(sub, [{"id": item["id"], "price": price_id}], None)
        behavior = conf["features"]["subscription_update"]["proration_behavior"]
        lines = self.proration.lines(sub, changes, pdate) if behavior != "none" else []
        before = copy.deepcopy(sub)
        self.proration.apply(sub, changes, pdate)
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))
        if lines and behavior == "always_invoice":
            inv = self.invoices.issue(sub, sub["customer"], lines, "subscription_update")
            self.dunning.after_collection(sub, inv, self.invoices.collect(inv, sub, off_session=False))
        elif lines:
            self.store.side(sub["id"]).setdefault("pending_prorations", []).extend(lines)

    def update_card(self, cus: Obj, card: str) -> None:
        """A new default card, then an immediate retry of the open invoices of delinquent subscriptions."""
        self.payment_methods.attach_card(cus, card)
        for other in self.store.all("subscription"):
            if other["customer"] != cus["id"] or other["status"] not in ("past_due", "unpaid"):
                continue
            inv = self.store.find(other["latest_invoice"])
            if inv is not None and inv["status"] == "open":
                self.dunning.after_collection(other, inv, self.invoices.collect(inv, other, off_session=False))
