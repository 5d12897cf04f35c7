"""Subscriptions: creation, status changes, the first payment (Checkout or the API), cancellation."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff
from .invoice_lines import InvoiceLines
from .invoices import PAID, Invoices, subscription_id_of
from .periods import DAY, add_interval

ENDED_STATUSES = ("canceled", "incomplete_expired")
STATUSES = ("trialing", "active", "incomplete", "incomplete_expired", "past_due", "unpaid", "canceled", "paused")
TRIAL_WILL_END_BEFORE = 3 * DAY
INCOMPLETE_EXPIRY = 23 * 3600

# A subscription line to create: (price, quantity or None for metered prices).
ItemSpec = tuple[Obj, int | None]


def item_by_id(sub: Obj, item_id: str) -> Obj | None:
    return next((i for i in sub["items"]["data"] if i["id"] == item_id), None)


def plan_of(price: Obj) -> Obj:
    """The legacy `plan` Stripe still puts beside `price` on a subscription item (the same price, as a plan)."""
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": price["tiers_mode"],
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def first_item(sub: Obj) -> Obj:
    item: Obj = sub["items"]["data"][0]
    return item


class Subscriptions:
    def __init__(
        self, store: Store, events: EventBus, time: BusinessTime, invoices: Invoices, lines: InvoiceLines
    ) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.invoices = invoices
        self.lines = lines

    def new_item(self, sub_id: str, price: Obj, quantity: int | None, start: int, end: int) -> Obj:
        metered = (price.get("recurring") or {}).get("usage_type") == "metered"
        return {
            "id": new_id("si", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.time.now(),
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": {},
            "plan": plan_of(price),
            "price": copy.deepcopy(price),
            "quantity": None if metered else (quantity or 1),
            "subscription": sub_id,
            "tax_rates": [],
        }

    def create(
        self,
        customer: Obj,
        lines: list[ItemSpec],
        *,
        trial_days: int | None = None,
        metadata: dict[str, Any] | None = None,
        automatic_tax: bool = False,
        missing_pm_behavior: str = "create_invoice",
    ) -> Obj:
        """Create the subscription in `incomplete` (or `trialing`) and emit customer.subscription.created."""
        now = self.time.now()
        sub_id = new_id("sub", 24)
        trial_end = now + trial_days * DAY if trial_days else None
        interval_price = next((p for p, _ in lines if p.get("recurring")), lines[0][0])
        recurring = interval_price.get("recurring") or {"interval": "month", "interval_count": 1}
        period_end = trial_end or add_interval(now, recurring["interval"], recurring.get("interval_count", 1))
        items = [self.new_item(sub_id, p, q, now, period_end) for p, q in lines]
        sub = _subscription_object(
            sub_id,
            customer,
            items,
            (now, period_end, trial_end),
            currency=interval_price.get("currency", "usd"),
            metadata=dict(metadata or {}),
            automatic_tax=automatic_tax,
            missing_pm_behavior=missing_pm_behavior,
        )
        self.store.put(sub)
        for item in items:
            self.store.side(item["id"])["subscription"] = sub_id
        self.events.emit("customer.subscription.created", sub)
        return sub

    def set_status(self, sub: Obj, status: str, **fields: Any) -> None:
        before = copy.deepcopy(sub)
        sub["status"] = status
        sub.update(fields)
        self.events.emit("customer.subscription.updated", sub, diff(before, sub))

    def start(self, sub: Obj, behavior: str) -> tuple[Obj, str]:
        """The first invoice of a new subscription and its collection."""
        inv = self.invoice_current_period(sub, "subscription_create")
        outcome = self.invoices.collect(inv, sub, behavior)
        if outcome == PAID and sub["status"] == "incomplete":
            self.set_status(sub, "active")
        return inv, outcome

    def invoice_current_period(self, sub: Obj, reason: str) -> Obj:
        item = first_item(sub)
        lines = self.lines.period_lines(sub, item["current_period_start"], item["current_period_end"])
        return self.invoices.issue(sub, sub["customer"], lines, reason)

    def complete_action(self, inv: Obj, sub: Obj | None, succeed: bool) -> str:
        """The second step of a 3DS-like payment (hosted page)."""
        if succeed:
            self.invoices.mark_paid(inv)
            if sub is not None and sub["status"] in ("incomplete", "past_due", "unpaid"):
                self.set_status(sub, "active")
            return PAID
        self.invoices.fail_payment(inv, copy.deepcopy(inv))
        return "failed"

    def cancel(self, sub: Obj, reason: str = "cancellation_requested") -> None:
        before = copy.deepcopy(sub)
        now = self.time.now()
        sub["status"] = "canceled"
        sub["canceled_at"] = sub["canceled_at"] or now
        sub["ended_at"] = now
        sub["cancellation_details"]["reason"] = reason
        for inv in self.store.all("invoice"):
            if subscription_id_of(inv) == sub["id"] and inv["status"] == "open":
                self.invoices.stop_collecting(inv)
        self.events.emit("customer.subscription.deleted", sub, diff(before, sub))

    def cancel_for_customer(self, customer_id: str) -> None:
        for sub in self.store.all("subscription"):
            if sub["customer"] == customer_id and sub["status"] not in ENDED_STATUSES:
                self.cancel(sub)

    # ---- transitions the clock triggers ---------------------------------------------------------------------

    def expire_incomplete(self, sub: Obj) -> None:
        """23 h without a successful first payment: the first invoice is voided, the subscription ends."""
        inv = self.store.find(sub["latest_invoice"])
        if inv is not None and inv["status"] == "open":
            self.invoices.void_abandoned(inv)
        self.set_status(sub, "incomplete_expired", ended_at=self.time.now())

    def send_trial_will_end(self, sub: Obj) -> None:
        self.store.side(sub["id"])["trial_will_end_sent"] = True
        self.events.emit("customer.subscription.trial_will_end", sub)


def _subscription_object(
    sub_id: str,
    customer: Obj,
    items: list[Obj],
    times: tuple[int, int, int | None],
    *,
    currency: str,
    metadata: dict[str, Any],
    automatic_tax: bool,
    missing_pm_behavior: str,
) -> Obj:
    now, period_end, trial_end = times
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": automatic_tax, "disabled_reason": None, "liability": None},
        "billing_cycle_anchor": period_end if trial_end else now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": customer["invoice_settings"]["default_payment_method"],
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": None,
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "trialing" if trial_end else "incomplete",
        "test_clock": customer.get("test_clock"),
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": missing_pm_behavior}},
        "trial_start": now if trial_end else None,
    }
