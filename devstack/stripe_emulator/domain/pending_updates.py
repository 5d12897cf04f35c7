"""Pending updates (`payment_behavior=pending_if_incomplete`): the change waits for its invoice to be paid.

Paid in time: the items are applied (`pending_update_applied`); 23 h unpaid: the invoice is voided and the
update dropped (`pending_update_expired`).
"""

from __future__ import annotations

import copy

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff
from .invoices import Invoices

PENDING_UPDATE_TTL = 23 * 3600


class PendingUpdates:
    def __init__(self, store: Store, events: EventBus, time: BusinessTime, invoices: Invoices) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.invoices = invoices

    def start(self, sub: Obj, saved_items: Obj, saved_anchor: int, inv: Obj) -> None:
        """Payment for the update failed: roll the items back and keep the change pending."""
        applied = copy.deepcopy(sub["items"]["data"])
        before = copy.deepcopy(sub)
        sub["items"] = saved_items
        sub["billing_cycle_anchor"] = saved_anchor
        sub["pending_update"] = {
            "billing_cycle_anchor": None,
            "expires_at": self.time.now() + PENDING_UPDATE_TTL,
            "subscription_items": applied,
            "trial_end": None,
            "trial_from_plan": None,
        }
        inv["next_payment_attempt"] = None  # Stripe does not retry an invoice holding a pending update
        self.store.side(inv["id"])["pending_update_for"] = sub["id"]
        self.store.side(sub["id"])["pending_update_invoice"] = inv["id"]
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))

    def on_invoice_paid(self, inv: Obj, _before: Obj) -> None:
        """An invoice listener: the invoice holding a pending update was paid, so the update applies."""
        pending_for = self.store.side(inv["id"]).pop("pending_update_for", None)
        sub = self.store.find(pending_for) if pending_for else None
        if sub is not None:
            self._apply(sub)

    def _apply(self, sub: Obj) -> None:
        pending = sub.get("pending_update")
        if not pending:
            return
        before = copy.deepcopy(sub)
        sub["items"]["data"] = copy.deepcopy(pending["subscription_items"])
        sub["pending_update"] = None
        self.store.side(sub["id"]).pop("pending_update_invoice", None)
        self.events.emit("customer.subscription.pending_update_applied", sub, diff(before, sub))
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))

    def expire(self, sub: Obj) -> None:
        before = copy.deepcopy(sub)
        sub["pending_update"] = None
        inv = self.store.find(self.store.side(sub["id"]).pop("pending_update_invoice", None))
        if inv is not None and inv["status"] == "open":
            self.invoices.void(inv)
        self.events.emit("customer.subscription.pending_update_expired", sub, diff(before, sub))
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))
