"""Renewals: the end of a billing period (trial end included), upcoming-invoice previews, paused collection,
and resuming a paused subscription."""

from __future__ import annotations

import copy

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff
from .dunning import Dunning
from .invoice_lines import InvoiceLines
from .invoices import Invoices
from .periods import period_end
from .subscriptions import Subscriptions, first_item


class Renewals:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        time: BusinessTime,
        invoices: Invoices,
        lines: InvoiceLines,
        subscriptions: Subscriptions,
        dunning: Dunning,
    ) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.invoices = invoices
        self.lines = lines
        self.subscriptions = subscriptions
        self.dunning = dunning

    # ---- period end -------------------------------------------------------------------------------------------

    def period_end(self, sub: Obj) -> None:
        """Cancel at period end, or start the next period: trial end behaviour, then invoice and collect."""
        if sub["cancel_at_period_end"]:
            self.subscriptions.cancel(sub)
            return
        before = copy.deepcopy(sub)
        was_trial = sub["status"] == "trialing"
        old_start = first_item(sub)["current_period_start"]
        for item in sub["items"]["data"]:
            item["current_period_start"] = item["current_period_end"]
            item["current_period_end"] = period_end(item["current_period_end"], item["price"])
        if was_trial and not self._end_trial(sub, before):
            return
        if sub["status"] == "paused":
            return
        item = first_item(sub)
        pending = self.store.side(sub["id"]).pop("pending_prorations", [])
        usage_start = None if was_trial else old_start
        lines = pending + self.lines.period_lines(
            sub, item["current_period_start"], item["current_period_end"], usage_start=usage_start
        )
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))
        if sub.get("pause_collection"):
            self.paused_collection_invoice(sub, lines)
            return
        inv = self.invoices.issue(sub, sub["customer"], lines, "subscription_cycle")
        if sub["status"] == "unpaid":
            inv["auto_advance"] = False
            return
        self.dunning.after_collection(sub, inv, self.invoices.collect(inv, sub))

    def _end_trial(self, sub: Obj, before: Obj) -> bool:
        """The trial ended: without a payment method, cancel or pause per trial_settings (False: stop there)."""
        cus = self.store.find(sub["customer"]) or {}
        has_pm = bool(sub["default_payment_method"] or cus["invoice_settings"]["default_payment_method"])
        missing = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
        if not has_pm and missing == "cancel":
            self.subscriptions.cancel(sub, reason="cancellation_requested")
            return False
        if not has_pm and missing == "pause":
            sub["status"] = "paused"
            sub["pause_collection"] = None
            self.events.emit("customer.subscription.paused", sub)
            self.events.emit("customer.subscription.updated", sub, diff(before, sub))
            return False
        sub["status"] = "active"
        return True

    def paused_collection_invoice(self, sub: Obj, lines: list[Obj]) -> Obj:
        """A renewal while `pause_collection` is set: no payment; the invoice is kept as draft, voided or
        marked uncollectible per `pause_collection.behavior`."""
        behavior = sub["pause_collection"]["behavior"]
        inv = self.invoices.saved(sub, sub["customer"], lines, "subscription_cycle")
        inv["auto_advance"] = False
        sub["latest_invoice"] = inv["id"]
        self.events.emit("invoice.created", inv)
        if behavior == "keep_as_draft":
            return inv
        before = copy.deepcopy(inv)
        inv["status"] = "open"
        inv["status_transitions"]["finalized_at"] = self.time.now()
        self.events.emit("invoice.finalized", inv, diff(before, inv))
        if behavior == "void":
            self.invoices.void(inv)
        else:
            self.invoices.mark_uncollectible(inv)
        return inv

    def unpause(self, sub: Obj) -> None:
        """`pause_collection.resumes_at` passed."""
        before = copy.deepcopy(sub)
        sub["pause_collection"] = None
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))

    # ---- upcoming invoice -------------------------------------------------------------------------------------

    def preview(self, sub: Obj) -> Obj:
        """The next renewal invoice as `invoice.upcoming` shows it (no id, never saved)."""
        preview = copy.deepcopy(sub)
        if preview["status"] == "trialing":
            preview["status"] = "active"
        item = first_item(preview)
        start = item["current_period_end"]
        end = period_end(start, item["price"])
        usage_start = None if sub["status"] == "trialing" else item["current_period_start"]
        pending = copy.deepcopy(self.store.side(sub["id"]).get("pending_prorations", []))
        lines = pending + self.lines.period_lines(preview, start, end, usage_start=usage_start)
        inv = self.invoices.build(sub["customer"], sub, lines, "upcoming", start, end, save=False)
        inv["id"] = None
        for line in inv["lines"]["data"]:
            line["invoice"] = None
        inv["lines"]["url"] = "/v1/invoices/upcoming/lines"
        inv["next_payment_attempt"] = start
        return inv

    def send_upcoming(self, sub: Obj) -> None:
        self.store.side(sub["id"])["upcoming_for"] = first_item(sub)["current_period_end"]
        self.events.emit("invoice.upcoming", self.preview(sub))

    # ---- resume -----------------------------------------------------------------------------------------------

    def resume(self, sub: Obj) -> None:
        """`POST /v1/subscriptions/{id}/resume` of a paused subscription: a new period from now, invoiced."""
        now = self.time.now()
        before = copy.deepcopy(sub)
        sub["status"] = "active"
        for item in sub["items"]["data"]:
            item["current_period_start"] = now
            item["current_period_end"] = period_end(now, item["price"])
        self.events.emit("customer.subscription.resumed", sub)
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))
        inv = self.subscriptions.invoice_current_period(sub, "subscription_update")
        self.dunning.after_collection(sub, inv, self.invoices.collect(inv, sub))
