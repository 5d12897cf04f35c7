"""Asynchronous (bank debit) payments: the invoice stays open until the clock reaches the settlement time."""

from __future__ import annotations

import copy
from collections.abc import Callable

from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .invoices import Invoices
from .periods import DAY
from .settings import Settings
from .subscriptions import Subscriptions


class AsyncPayments:
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
        # Called with (invoice, succeeded) after a debit settled (Checkout's async_payment_* events).
        self.settled_listeners: list[Callable[[Obj, bool], None]] = []

    def start(self, inv: Obj, sub: Obj | None, succeed: bool) -> None:
        """The payment is processing; it settles `async_payment_delay_days` later."""
        side = self.store.side(inv["id"])
        side["async_settles_at"] = self.time.now() + int(self.settings.async_payment_delay_days * DAY)
        side["async_succeed"] = succeed
        if sub is not None:
            self.store.side(sub["id"])["async_payment"] = inv["id"]
        inv["attempted"] = True
        inv["attempt_count"] += 1

    def settles_at(self, inv: Obj) -> float | None:
        at: float | None = self.store.side(inv["id"]).get("async_settles_at")
        return at

    def settle(self, inv: Obj) -> None:
        side = self.store.side(inv["id"])
        side.pop("async_settles_at", None)
        sub = self.invoices.subscription_of(inv)
        if sub is not None:
            self.store.side(sub["id"]).pop("async_payment", None)
        if side.get("async_succeed"):
            self.invoices.mark_paid(inv)
            if sub is not None and sub["status"] == "incomplete":
                self.subscriptions.set_status(sub, "active")
        else:
            self.invoices.fail_payment(inv, copy.deepcopy(inv))
            self.invoices.void(inv)
            if sub is not None and sub["status"] == "incomplete":
                self.subscriptions.set_status(sub, "incomplete_expired", ended_at=self.time.now())
        for listener in self.settled_listeners:
            listener(inv, bool(side.get("async_succeed")))
