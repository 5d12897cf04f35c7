"""The clock's work list: every transition that is due at some time, in the order ties are broken.

Per subscription: incomplete expiry, pending-update expiry, unpause, upcoming invoice, trial will end, scheduled
cancel, period end; per invoice: dunning retry, bank-debit settlement; then Checkout expiry, pricing-plan
renewals and meter error reports. `schedule.Scheduler` runs the earliest one, again and again.
"""

from __future__ import annotations

from functools import partial

from devstack.stripe_emulator.schedule import (
    CHECKOUT_EXPIRY,
    PAYMENT,
    RENEWAL,
    SCHEDULED_CANCEL,
    SUBSCRIPTION_STEP,
    Task,
)
from devstack.stripe_emulator.store import Obj, Store

from .async_payments import AsyncPayments
from .checkout_sessions import CheckoutSessions
from .dunning import Dunning
from .meter_errors import MeterErrorReports
from .pending_updates import PendingUpdates
from .periods import DAY
from .pricing_plans import PricingPlans
from .renewals import Renewals
from .settings import Settings
from .subscriptions import INCOMPLETE_EXPIRY, TRIAL_WILL_END_BEFORE, Subscriptions, first_item

NOT_SCHEDULED = ("canceled", "incomplete_expired", "paused")


class Timeline:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        subscriptions: Subscriptions,
        renewals: Renewals,
        pending_updates: PendingUpdates,
        dunning: Dunning,
        async_payments: AsyncPayments,
        checkout_sessions: CheckoutSessions,
        pricing_plans: PricingPlans,
        meter_errors: MeterErrorReports,
    ) -> None:
        self.store = store
        self.settings = settings
        self.subscriptions = subscriptions
        self.renewals = renewals
        self.pending_updates = pending_updates
        self.dunning = dunning
        self.async_payments = async_payments
        self.checkout_sessions = checkout_sessions
        self.pricing_plans = pricing_plans
        self.meter_errors = meter_errors

    def due(self) -> list[Task]:
        tasks: list[Task] = []
        for sub in self.store.all("subscription"):
            tasks.extend(self._subscription_tasks(sub))
        for inv in self.store.all("invoice"):
            tasks.extend(self._invoice_tasks(inv))
        for cs in self.store.all("checkout.session"):
            if cs["status"] == "open":
                tasks.append((cs["expires_at"], CHECKOUT_EXPIRY, partial(self.checkout_sessions.expire, cs)))
        tasks.extend(self.pricing_plans.due())
        report = self.meter_errors.due()
        if report is not None:
            tasks.append(report)
        return tasks

    def _subscription_tasks(self, sub: Obj) -> list[Task]:
        status = sub["status"]
        if status in NOT_SCHEDULED:
            return []
        if status == "incomplete":
            if self.store.side(sub["id"]).get("async_payment"):
                return []
            return [
                (
                    sub["created"] + INCOMPLETE_EXPIRY,
                    SUBSCRIPTION_STEP,
                    partial(self.subscriptions.expire_incomplete, sub),
                )
            ]
        tasks: list[Task] = []
        pending = sub.get("pending_update")
        if pending:
            tasks.append((pending["expires_at"], SUBSCRIPTION_STEP, partial(self.pending_updates.expire, sub)))
        resumes_at = (sub.get("pause_collection") or {}).get("resumes_at")
        if resumes_at:
            tasks.append((resumes_at, SUBSCRIPTION_STEP, partial(self.renewals.unpause, sub)))
        tasks.extend(self._upcoming_invoice(sub))
        tasks.extend(self._trial_will_end(sub))
        end = first_item(sub)["current_period_end"]
        if sub["cancel_at"] and sub["cancel_at"] < end:
            tasks.append((sub["cancel_at"], SCHEDULED_CANCEL, partial(self.subscriptions.cancel, sub)))
        tasks.append((end, RENEWAL, partial(self.renewals.period_end, sub)))
        return tasks

    def _upcoming_invoice(self, sub: Obj) -> list[Task]:
        item = first_item(sub)
        end = item["current_period_end"]
        days = self.settings.invoice_upcoming_days
        upcoming_at = end - days * DAY
        if (
            days > 0
            and not sub["cancel_at_period_end"]
            and self.store.side(sub["id"]).get("upcoming_for") != end
            and upcoming_at > item["current_period_start"]
        ):
            return [(upcoming_at, SUBSCRIPTION_STEP, partial(self.renewals.send_upcoming, sub))]
        return []

    def _trial_will_end(self, sub: Obj) -> list[Task]:
        if sub["status"] != "trialing" or not sub["trial_end"]:
            return []
        at = sub["trial_end"] - TRIAL_WILL_END_BEFORE
        if self.store.side(sub["id"]).get("trial_will_end_sent") or at <= sub["trial_start"]:
            return []
        return [(at, SUBSCRIPTION_STEP, partial(self.subscriptions.send_trial_will_end, sub))]

    def _invoice_tasks(self, inv: Obj) -> list[Task]:
        if inv["status"] != "open":
            return []
        tasks: list[Task] = []
        if inv.get("next_payment_attempt"):
            tasks.append((inv["next_payment_attempt"], PAYMENT, partial(self.dunning.retry, inv)))
        settles = self.async_payments.settles_at(inv)
        if settles:
            tasks.append((settles, PAYMENT, partial(self.async_payments.settle, inv)))
        return tasks
