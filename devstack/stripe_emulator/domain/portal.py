"""The customer portal: configurations, and what the hosted portal's buttons do (cancel, resume, switch plan,
update card)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.events import EventBus
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


def _enabled(section: dict[str, Any]) -> bool:
    return str(section.get("enabled", "false")).lower() == "true" or section.get("enabled") is True


def allowed_prices(conf: Obj) -> list[str]:
    """The prices a configuration lets customers switch to."""
    out: list[str] = []
    for product in conf["features"]["subscription_update"]["products"]:
        out.extend(product["prices"])
    return out


class PortalConfigurations:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def make(self, params: dict[str, Any], oid: str | None = None, is_default: bool = False) -> Obj:
        """A configuration from `POST /v1/billing_portal/configurations` params (an update rebuilds it whole)."""
        features = params.get("features") or {}
        upd = features.get("subscription_update") or {}
        cancel = features.get("subscription_cancel") or {}
        now = self.clock.now_int()
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
                    "enabled": _enabled(features.get("payment_method_update") or {"enabled": True}),
                    "payment_method_configuration": None,
                },
                "subscription_cancel": {
                    "cancellation_reason": {"enabled": False, "options": []},
                    "enabled": _enabled(cancel) if cancel else False,
                    "mode": cancel.get("mode", "at_period_end"),
                    "proration_behavior": cancel.get("proration_behavior", "none"),
                },
                "subscription_update": {
                    "default_allowed_updates": list(upd.get("default_allowed_updates") or []),
                    "enabled": _enabled(upd) if upd else False,
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
        return self.store.put(conf)

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
            self.dunning.after_collection(sub, inv, self.invoices.collect(inv, sub))
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
                self.dunning.after_collection(other, inv, self.invoices.collect(inv, other))
