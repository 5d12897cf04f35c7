"""Dunning: after a failed payment, retries every `dunning_retry_interval_days`, then Stripe's "manage failed
payments" end action (`dunning_end_action`, `dunning_mark_uncollectible`) once all retries failed."""

from __future__ import annotations

from collections.abc import Callable

from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .invoices import PAID, Invoices
from .settings import Settings
from .subscriptions import Subscriptions

DELINQUENT = ("past_due", "unpaid")


class Dunning:
    def __init__(
        self,
        store: Store,
        time: BusinessTime,
        settings: Settings,
        invoices: Invoices,
        subscriptions: Subscriptions,
    ) -> None:
        self.store = store
        self.time = time
        self.settings = settings
        self.invoices = invoices
        self.subscriptions = subscriptions
        # Called with the invoice once its last retry failed, before the end action.
        self.exhausted_listeners: list[Callable[[Obj], None]] = []

    def after_collection(self, sub: Obj, inv: Obj, outcome: str) -> None:
        """A subscription invoice was collected: recover on success, else schedule a retry and go past_due."""
        if outcome == PAID:
            if sub["status"] in DELINQUENT:
                self.subscriptions.set_status(sub, "active")
            return
        side = self.store.side(inv["id"])
        side.setdefault("retries_left", self.settings.dunning_retries)
        if side["retries_left"] > 0:
            inv["next_payment_attempt"] = self.time.now() + self.settings.dunning_retry_interval
        else:
            inv["next_payment_attempt"] = None
        if sub["status"] in ("active", "trialing"):
            self.subscriptions.set_status(sub, "past_due")

    def retry(self, inv: Obj) -> None:
        """A scheduled retry (`next_payment_attempt`) of an open invoice."""
        side = self.store.side(inv["id"])
        side["retries_left"] = side.get("retries_left", self.settings.dunning_retries) - 1
        inv["next_payment_attempt"] = None
        sub = self.invoices.subscription_of(inv)
        outcome = self.invoices.collect(inv, sub)
        if outcome == PAID:
            if sub is not None and sub["status"] in DELINQUENT:
                self.subscriptions.set_status(sub, "active")
            return
        if side["retries_left"] > 0:
            inv["next_payment_attempt"] = self.time.now() + self.settings.dunning_retry_interval
            return
        self._exhausted(inv, sub)

    def _exhausted(self, inv: Obj, sub: Obj | None) -> None:
        for listener in self.exhausted_listeners:
            listener(inv)
        if self.settings.dunning_mark_uncollectible:
            self.invoices.mark_uncollectible(inv)
        if sub is None or sub["status"] != "past_due":
            return
        if self.settings.dunning_end_action == "canceled":
            self.subscriptions.cancel(sub, reason="payment_failed")
        elif self.settings.dunning_end_action == "unpaid":
            self.subscriptions.set_status(sub, "unpaid")
