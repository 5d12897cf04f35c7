"""The billing engine: subscriptions, invoices, payments, prorations, renewals, dunning, meters.

Everything time-driven runs from `tick()` (called after each clock advance) in due-time order, so a jump of
several months produces the same event sequence as living through it.
"""

from __future__ import annotations

import calendar
import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import StripeError, invalid, not_found
from .ids import new_id
from .store import Obj

if TYPE_CHECKING:
    from .app import StripeEmulator

DAY = 86400
TRIAL_WILL_END_BEFORE = 3 * DAY
INCOMPLETE_EXPIRY = 23 * 3600
METER_DEDUP_WINDOW = 24 * 3600
METER_PAST_LIMIT = 35 * DAY
METER_FUTURE_LIMIT = 5 * 60


def check_meter_timestamp(timestamp: int, now: float, param: str) -> None:
    """Stripe's window for meter events: at most 35 days in the past and 5 minutes in the future."""
    if timestamp < now - METER_PAST_LIMIT:
        raise invalid("Timestamp must be within the past 35 days.", param=param, code="timestamp_too_far_in_past")
    if timestamp > now + METER_FUTURE_LIMIT:
        raise invalid(
            "Timestamp must not be more than 5 minutes in the future.", param=param, code="timestamp_in_future"
        )


SESSION_TOKEN_TTL = 15 * 60
# Codes Stripe reports asynchronously (v1.billing.meter.error_report_triggered / no_meter_found), not as a 400.
ASYNC_METER_ERROR_CODES = frozenset(
    {
        "meter_event_customer_not_found",
        "meter_event_no_customer_defined",
        "meter_event_invalid_value",
        "no_meter",
        "archived_meter",
    }
)
MAX_SAMPLE_ERRORS = 5
PENDING_UPDATE_TTL = 23 * 3600
DUNNING_END_ACTIONS = ("unpaid", "canceled", "past_due")
# Subscription statuses that keep the product's entitlements active.
ENTITLED_STATUSES = ("trialing", "active", "past_due")

# card number -> behaviour of charges on it
CARDS: dict[str, tuple[str, str, str]] = {
    "4242424242424242": ("succeed", "visa", "4242"),
    "4000000000000002": ("decline", "visa", "0002"),
    "4000000000000341": ("decline_on_charge", "visa", "0341"),
    "4000002500003155": ("requires_action", "visa", "3155"),
}
CARD_ALIASES = {
    "pay": "4242424242424242",
    "succeed": "4242424242424242",
    "decline": "4000000000000002",
    "decline_on_charge": "4000000000000341",
    "requires_action": "4000002500003155",
}


def add_interval(ts: int, interval: str, count: int = 1) -> int:
    """Calendar arithmetic like Stripe's billing cycles (month-end days clamp)."""
    dt = datetime.fromtimestamp(ts, UTC)
    if interval == "day":
        return ts + count * DAY
    if interval == "week":
        return ts + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    month_index = dt.month - 1 + months
    year = dt.year + month_index // 12
    month = month_index % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp())


def diff(before: Obj, after: Obj) -> dict[str, Any]:
    """Top-level previous_attributes for an `*.updated` event."""
    return {k: copy.deepcopy(before.get(k)) for k in after if k != "updated" and before.get(k) != after.get(k)}


class Billing:
    """State transitions for customers' subscriptions; always called under the store lock."""

    def __init__(
        self,
        emu: StripeEmulator,
        dunning_retries: int,
        dunning_retry_interval_days: int,
        meter_error_report_delay_seconds: float = 60.0,
        invoice_upcoming_days: int = 7,
        dunning_end_action: str = "unpaid",
        dunning_mark_uncollectible: bool = False,
        async_payment_delay_days: float = 4,
        synchronous_meter_errors: bool = False,
    ) -> None:
        self.emu = emu
        self.store = emu.store
        self.dunning_retries = dunning_retries
        self.dunning_retry_interval = dunning_retry_interval_days * DAY
        self.meter_error_report_delay = meter_error_report_delay_seconds
        # Knobs (Stripe dashboard settings); `reset()` restores these constructor values.
        self.invoice_upcoming_days = invoice_upcoming_days
        self.dunning_end_action = dunning_end_action
        self.dunning_mark_uncollectible = dunning_mark_uncollectible
        self.async_payment_delay_days = async_payment_delay_days
        # Not Stripe's behaviour: answer 400 for meter errors Stripe reports asynchronously (for controls).
        self.synchronous_meter_errors = synchronous_meter_errors
        self._defaults = self.settings()
        self.configure(**self._defaults)
        # Invalid meter events awaiting their asynchronous error report: meter id (None: no meter) -> errors.
        self.pending_meter_errors: dict[str | None, list[dict[str, Any]]] = {}
        self._seq = itertools.count()
        self.meter_events: list[dict[str, Any]] = []
        self.meter_identifiers: dict[str, float] = {}
        self.meter_rejections: list[dict[str, Any]] = []
        self.sessions: dict[str, float] = {}
        self._at: int | None = None
        self.async_settled_listeners: list[Callable[[Obj, bool], None]] = []

    def settings(self) -> dict[str, Any]:
        return {
            "invoice_upcoming_days": self.invoice_upcoming_days,
            "dunning_end_action": self.dunning_end_action,
            "dunning_mark_uncollectible": self.dunning_mark_uncollectible,
            "dunning_retries": self.dunning_retries,
            "dunning_retry_interval_days": self.dunning_retry_interval / DAY,
            "async_payment_delay_days": self.async_payment_delay_days,
            "meter_error_report_delay_seconds": self.meter_error_report_delay,
            "synchronous_meter_errors": self.synchronous_meter_errors,
        }

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs at runtime (also `POST /_emulator/settings`); unknown names or values raise ValueError."""
        for name, value in knobs.items():
            if name == "dunning_end_action":
                if value not in DUNNING_END_ACTIONS:
                    raise ValueError(f"dunning_end_action must be one of {DUNNING_END_ACTIONS}")
                self.dunning_end_action = str(value)
            elif name == "dunning_mark_uncollectible":
                self.dunning_mark_uncollectible = value is True or str(value).lower() == "true"
            elif name == "invoice_upcoming_days":
                self.invoice_upcoming_days = int(value)
            elif name == "dunning_retries":
                self.dunning_retries = int(value)
            elif name == "dunning_retry_interval_days":
                self.dunning_retry_interval = int(float(value) * DAY)
            elif name == "async_payment_delay_days":
                self.async_payment_delay_days = float(value)
            elif name == "synchronous_meter_errors":
                self.synchronous_meter_errors = value is True or str(value).lower() == "true"
            elif name == "meter_error_report_delay_seconds":
                self.meter_error_report_delay = float(value)
            else:
                raise ValueError(f"unknown setting: {name}")
        return self.settings()

    def reset(self) -> None:
        self.configure(**self._defaults)
        self.meter_events.clear()
        self.meter_identifiers.clear()
        self.meter_rejections.clear()
        self.sessions.clear()
        self.pending_meter_errors.clear()

    def now(self) -> int:
        """Business time: while `tick` replays a due transition, the moment it was due."""
        return self._at if self._at is not None else self.emu.clock.now_int()

    def emit(self, event_type: str, obj: Obj, previous: dict[str, Any] | None = None) -> Obj:
        return self.emu.events.emit(event_type, obj, previous)

    # ---- customers & payment methods -----------------------------------------------------------------

    def new_customer(self, params: dict[str, Any]) -> Obj:
        cus: Obj = {
            "id": new_id("cus", 14),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "email": params.get("email"),
            "invoice_prefix": new_id("x", 7)[2:].upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": params.get("test_clock"),
        }
        self.store.put(cus)
        self.emit("customer.created", cus)
        return cus

    def attach_card(self, customer: Obj, card: str, make_default: bool = True) -> Obj:
        """Create a card PaymentMethod for a test card number (or alias) and make it the default."""
        number = CARD_ALIASES.get(card, card)
        if number not in CARDS:
            raise invalid(f"Unknown test card: {card}", param="card")
        behavior, brand, last4 = CARDS[number]
        pm: Obj = {
            "id": new_id("pm", 24),
            "object": "payment_method",
            "billing_details": {"address": None, "email": customer.get("email"), "name": None, "phone": None},
            "card": {
                "brand": brand,
                "country": "US",
                "exp_month": 12,
                "exp_year": datetime.now(UTC).year + 3,
                "funding": "credit",
                "last4": last4,
            },
            "created": self.now(),
            "customer": customer["id"],
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        self.store.put(pm)
        self.store.side(pm["id"])["behavior"] = behavior
        self.emit("payment_method.attached", pm)
        if make_default:
            before = copy.deepcopy(customer)
            customer["invoice_settings"]["default_payment_method"] = pm["id"]
            self.emit("customer.updated", customer, diff(before, customer))
            for sub in self.store.all("subscription"):
                if sub["customer"] == customer["id"]:
                    sub["default_payment_method"] = pm["id"]
        return pm

    def attach_bank_account(self, customer: Obj, succeed: bool) -> Obj:
        """A `us_bank_account` PaymentMethod whose debits settle (or fail) only after `async_payment_delay_days`."""
        pm: Obj = {
            "id": new_id("pm", 24),
            "object": "payment_method",
            "billing_details": {"address": None, "email": customer.get("email"), "name": None, "phone": None},
            "created": self.now(),
            "customer": customer["id"],
            "livemode": False,
            "metadata": {},
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "last4": "6789" if succeed else "1116",
                "routing_number": "110000000",
            },
        }
        self.store.put(pm)
        self.store.side(pm["id"])["behavior"] = "async_succeed" if succeed else "async_fail"
        self.emit("payment_method.attached", pm)
        before = copy.deepcopy(customer)
        customer["invoice_settings"]["default_payment_method"] = pm["id"]
        self.emit("customer.updated", customer, diff(before, customer))
        return pm

    def charge_behavior(self, customer_id: str, sub: Obj | None = None) -> str:
        pm_id = (sub or {}).get("default_payment_method")
        if not pm_id:
            cus = self.store.find(customer_id)
            pm_id = cus["invoice_settings"]["default_payment_method"] if cus else None
        if not pm_id:
            return "no_payment_method"
        behavior = str(self.store.side(pm_id).get("behavior", "succeed"))
        # Renewals on a bank-debit method settle at once in the emulator (only Checkout's first payment waits).
        return {"decline_on_charge": "decline", "async_succeed": "succeed", "async_fail": "decline"}.get(
            behavior, behavior
        )

    # ---- subscriptions --------------------------------------------------------------------------------

    def price(self, price_id: str, param: str = "price") -> Obj:
        price = self.store.find(price_id)
        if price is None or price["object"] != "price":
            raise not_found("price", price_id, param)
        return price

    def new_item(self, sub_id: str, price: Obj, quantity: int | None, start: int, end: int) -> Obj:
        metered = (price.get("recurring") or {}).get("usage_type") == "metered"
        item: Obj = {
            "id": new_id("si", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.now(),
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": {},
            "price": copy.deepcopy(price),
            "quantity": None if metered else (quantity or 1),
            "subscription": sub_id,
            "tax_rates": [],
        }
        return item

    def create_subscription(
        self,
        customer: Obj,
        lines: list[tuple[Obj, int | None]],
        *,
        trial_days: int | None = None,
        metadata: dict[str, Any] | None = None,
        automatic_tax: bool = False,
        missing_pm_behavior: str = "create_invoice",
    ) -> Obj:
        """Create the subscription in `incomplete` (or `trialing`) and emit customer.subscription.created."""
        now = self.now()
        sub_id = new_id("sub", 24)
        trial_end = now + trial_days * DAY if trial_days else None
        interval_price = next((p for p, _ in lines if p.get("recurring")), lines[0][0])
        recurring = interval_price.get("recurring") or {"interval": "month", "interval_count": 1}
        period_end = trial_end or add_interval(now, recurring["interval"], recurring.get("interval_count", 1))
        items = [self.new_item(sub_id, p, q, now, period_end) for p, q in lines]
        sub: Obj = {
            "id": sub_id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"enabled": automatic_tax, "disabled_reason": None, "liability": None},
            "billing_cycle_anchor": period_end if trial_end else now,
            "billing_cycle_anchor_config": None,
            "billing_mode": {"type": "flexible"},
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": interval_price.get("currency", "usd"),
            "customer": customer["id"],
            "days_until_due": None,
            "default_payment_method": customer["invoice_settings"]["default_payment_method"],
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(metadata or {}),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {"payment_method_options": None, "payment_method_types": None},
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
        self.store.put(sub)
        for item in items:
            self.store.side(item["id"])["subscription"] = sub_id
        self.emit("customer.subscription.created", sub)
        return sub

    def set_status(self, sub: Obj, status: str, **fields: Any) -> None:
        before = copy.deepcopy(sub)
        sub["status"] = status
        sub.update(fields)
        self.emit("customer.subscription.updated", sub, diff(before, sub))

    def item_by_id(self, sub: Obj, item_id: str) -> Obj | None:
        return next((i for i in sub["items"]["data"] if i["id"] == item_id), None)

    # ---- invoices ---------------------------------------------------------------------------------------

    def line(
        self,
        sub: Obj | None,
        item: Obj | None,
        price: Obj,
        quantity: int,
        amount: int,
        start: int,
        end: int,
        description: str,
        proration: bool = False,
    ) -> Obj:
        return {
            "id": new_id("il", 24),
            "object": "line_item",
            "amount": amount,
            "currency": price.get("currency", "usd"),
            "description": description,
            "discount_amounts": [],
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "parent": {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"] if sub else None,
                    "subscription_item": item["id"] if item else None,
                },
                "type": "subscription_item_details",
            },
            "period": {"end": end, "start": start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {"price": price["id"], "product": price.get("product")},
                "type": "price_details",
                "unit_amount_decimal": str(price.get("unit_amount") or 0),
            },
            "quantity": quantity,
            "subtotal": amount,
            "taxes": [],
        }

    def build_invoice(
        self, customer_id: str, sub: Obj | None, lines: list[Obj], reason: str, start: int, end: int, save: bool
    ) -> Obj:
        total = sum(line["amount"] for line in lines)
        cus = self.store.find(customer_id) or {}
        balance = int(cus.get("balance", 0))
        applied = min(total, -balance) if balance < 0 and total > 0 else 0
        due = max(0, total - applied)
        inv_id = new_id("in", 24) if save else "upcoming_" + new_id("in", 12)
        for line in lines:
            line["invoice"] = inv_id
        inv: Obj = {
            "id": inv_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Emulated Stripe",
            "amount_due": due,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": due,
            "amount_shipping": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": True,
            "automatic_tax": {"enabled": bool(sub and sub["automatic_tax"]["enabled"]), "status": None},
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "created": self.now(),
            "currency": lines[0]["currency"] if lines else "usd",
            "customer": customer_id,
            "customer_email": cus.get("email"),
            "customer_name": cus.get("name"),
            "default_payment_method": None,
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": None,
            "ending_balance": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{inv_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]} if sub else None,
                "type": "subscription_details" if sub else None,
            },
            "period_end": end,
            "period_start": start,
            "starting_balance": balance,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_taxes": [],
            "webhooks_delivered_at": None,
        }
        if save:
            self.store.put(inv)
            if applied or total < 0:
                cus["balance"] = balance + applied + (-total if total < 0 else 0)
                inv["ending_balance"] = cus["balance"]
        return inv

    def issue_invoice(self, sub: Obj | None, customer_id: str, lines: list[Obj], reason: str) -> Obj:
        """Create and finalize (invoice.created, invoice.finalized); the caller then collects."""
        start = min((ln["period"]["start"] for ln in lines), default=self.now())
        end = max((ln["period"]["end"] for ln in lines), default=self.now())
        inv = self.build_invoice(customer_id, sub, lines, reason, start, end, save=True)
        self.emit("invoice.created", inv)
        cus = self.store.find(customer_id)
        seq = cus["next_invoice_sequence"] if cus else 1
        if cus:
            cus["next_invoice_sequence"] = seq + 1
        inv["number"] = f"{(cus or {}).get('invoice_prefix', 'EMU')}-{seq:04d}"
        inv["status"] = "open"
        inv["effective_at"] = self.now()
        inv["status_transitions"]["finalized_at"] = self.now()
        self.emit("invoice.finalized", inv)
        if sub is not None:
            sub["latest_invoice"] = inv["id"]
        return inv

    def collect(self, inv: Obj, sub: Obj | None, behavior: str | None = None) -> str:
        """Attempt payment: "paid", "failed" or "action_required" (with Stripe's invoice events)."""
        if inv["amount_due"] == 0:
            self._mark_paid(inv)
            return "paid"
        behavior = behavior or self.charge_behavior(inv["customer"], sub)
        before = copy.deepcopy(inv)
        inv["attempt_count"] += 1
        inv["attempted"] = True
        if behavior == "succeed":
            self._mark_paid(inv)
            return "paid"
        if behavior == "requires_action":
            self.emit("invoice.payment_action_required", inv, diff(before, inv))
            return "action_required"
        self.emit("invoice.updated", inv, diff(before, inv))
        self.emit("invoice.payment_failed", inv)
        return "failed"

    def _mark_paid(self, inv: Obj) -> None:
        before = copy.deepcopy(inv)
        inv["status"] = "paid"
        inv["amount_paid"] = inv["amount_due"]
        inv["amount_remaining"] = 0
        inv["attempted"] = True
        inv["next_payment_attempt"] = None
        inv["status_transitions"]["paid_at"] = self.now()
        self.emit("invoice.paid", inv, diff(before, inv))
        self.emit("invoice.payment_succeeded", inv)
        pending_for = self.store.side(inv["id"]).pop("pending_update_for", None)
        if pending_for:
            sub = self.store.find(pending_for)
            if sub is not None:
                self._apply_pending_update(sub)
        ppsub_id = self.store.side(inv["id"]).get("pricing_plan_subscription")
        if ppsub_id and before["attempt_count"] > 0 and before["status"] == "open":
            self.emu.pricing_plans.collection_recovered(ppsub_id)

    def period_lines(self, sub: Obj, start: int, end: int, usage_start: int | None = None) -> list[Obj]:
        lines: list[Obj] = []
        for item in sub["items"]["data"]:
            price = item["price"]
            recurring = price.get("recurring") or {}
            if recurring.get("usage_type") == "metered":
                if usage_start is None:
                    continue
                qty = self.usage_between(recurring.get("meter"), sub["customer"], usage_start, start)
                lines.append(
                    self.line(
                        sub,
                        item,
                        price,
                        qty,
                        qty * int(price["unit_amount"] or 0),
                        usage_start,
                        start,
                        f"{qty} x {price.get('nickname') or price['id']}",
                    )
                )
                continue
            qty = int(item["quantity"] or 1)
            amount = 0 if sub["status"] == "trialing" else qty * int(price["unit_amount"] or 0)
            desc = f"{qty} x {price.get('nickname') or price['product']}"
            if sub["status"] == "trialing":
                desc = f"Trial period for {price.get('nickname') or price['product']}"
            lines.append(self.line(sub, item, price, qty, amount, start, end, desc))
        return lines

    # ---- first payment (Checkout) ------------------------------------------------------------------------

    def start_subscription(self, sub: Obj, behavior: str) -> tuple[Obj, str]:
        """The first invoice of a new subscription and its collection."""
        item = sub["items"]["data"][0]
        lines = self.period_lines(sub, item["current_period_start"], item["current_period_end"])
        inv = self.issue_invoice(sub, sub["customer"], lines, "subscription_create")
        outcome = self.collect(inv, sub, behavior)
        if outcome == "paid" and sub["status"] == "incomplete":
            self.set_status(sub, "active")
        return inv, outcome

    def complete_action(self, inv: Obj, sub: Obj | None, succeed: bool) -> str:
        """The second step of a 3DS-like payment (hosted page)."""
        if succeed:
            self._mark_paid(inv)
            if sub is not None and sub["status"] in ("incomplete", "past_due", "unpaid"):
                self.set_status(sub, "active")
            return "paid"
        before = copy.deepcopy(inv)
        self.emit("invoice.updated", inv, diff(before, inv))
        self.emit("invoice.payment_failed", inv)
        return "failed"

    # ---- updates and prorations ----------------------------------------------------------------------------

    def proration_plan(
        self, sub: Obj, item_params: list[dict[str, Any]], proration_date: int | None
    ) -> tuple[list[tuple[Obj | None, Obj, int]], int]:
        """Resolve `items[...]` into (existing item or None, new price, new quantity) and the proration date."""
        now = self.now()
        pdate = now if proration_date is None else int(proration_date)
        changes: list[tuple[Obj | None, Obj, int]] = []
        for i, spec in enumerate(item_params):
            item = self.item_by_id(sub, spec["id"]) if spec.get("id") else None
            if spec.get("id") and item is None:
                raise invalid(f"No such subscription item: '{spec['id']}'", param=f"items[{i}][id]")
            if item is None and len(sub["items"]["data"]) == 1 and not spec.get("id") and spec.get("price"):
                raise invalid(
                    "Pass items[0][id] to change an existing item's price (adding items is not emulated).",
                    param=f"items[{i}][id]",
                )
            price = self.price(spec["price"], f"items[{i}][price]") if spec.get("price") else item["price"]  # type: ignore[index]
            qty = (
                int(spec["quantity"])
                if spec.get("quantity") not in (None, "")
                else int((item or {}).get("quantity") or 1)
            )
            changes.append((item, price, qty))
        for item, _, _ in changes:
            if item is not None and not item["current_period_start"] <= pdate <= item["current_period_end"]:
                raise invalid(
                    "proration_date must be within the subscription's current billing period.",
                    param="proration_date",
                )
        return changes, pdate

    def proration_lines(self, sub: Obj, changes: list[tuple[Obj | None, Obj, int]], pdate: int) -> list[Obj]:
        """Credit unused time at the old price, charge remaining time at the new one (each line rounded)."""
        lines: list[Obj] = []
        if sub["status"] == "trialing":
            return lines
        for item, price, qty in changes:
            if item is None:
                continue
            old_price, old_qty = item["price"], int(item["quantity"] or 1)
            if old_price["id"] == price["id"] and old_qty == qty:
                continue
            if (old_price.get("recurring") or {}).get("usage_type") == "metered":
                continue
            start, end = item["current_period_start"], item["current_period_end"]
            frac = (end - pdate) / (end - start) if end > start else 0.0
            credit = -round(int(old_price["unit_amount"] or 0) * old_qty * frac)
            same_interval = (old_price.get("recurring") or {}).get("interval") == (price.get("recurring") or {}).get(
                "interval"
            )
            if same_interval:
                debit = round(int(price["unit_amount"] or 0) * qty * frac)
                new_end = end
            else:
                debit = int(price["unit_amount"] or 0) * qty
                rec = price.get("recurring") or {"interval": "month"}
                new_end = add_interval(pdate, rec["interval"], rec.get("interval_count", 1))
            day = datetime.fromtimestamp(pdate, UTC).strftime("%d %b %Y")
            lines.append(
                self.line(
                    sub,
                    item,
                    old_price,
                    old_qty,
                    credit,
                    pdate,
                    end,
                    f"Unused time on {old_qty} x {old_price['product']} after {day}",
                    proration=True,
                )
            )
            lines.append(
                self.line(
                    sub,
                    item,
                    price,
                    qty,
                    debit,
                    pdate,
                    new_end,
                    f"Remaining time on {qty} x {price['product']} after {day}",
                    proration=True,
                )
            )
        return lines

    def apply_items(self, sub: Obj, changes: list[tuple[Obj | None, Obj, int]], pdate: int) -> None:
        for item, price, qty in changes:
            if item is None:
                continue
            interval_changed = (item["price"].get("recurring") or {}).get("interval") != (
                price.get("recurring") or {}
            ).get("interval")
            item["price"] = copy.deepcopy(price)
            if item["quantity"] is not None:
                item["quantity"] = qty
            if interval_changed:
                rec = price.get("recurring") or {"interval": "month"}
                item["current_period_start"] = pdate
                item["current_period_end"] = add_interval(pdate, rec["interval"], rec.get("interval_count", 1))
                sub["billing_cycle_anchor"] = pdate

    def cancel(self, sub: Obj, reason: str = "cancellation_requested") -> None:
        before = copy.deepcopy(sub)
        now = self.now()
        sub["status"] = "canceled"
        sub["canceled_at"] = sub["canceled_at"] or now
        sub["ended_at"] = now
        sub["cancellation_details"]["reason"] = reason
        for inv in self.store.all("invoice"):
            details = inv["parent"]["subscription_details"] or {}
            if details.get("subscription") == sub["id"] and inv["status"] == "open":
                inv["auto_advance"] = False
                inv["next_payment_attempt"] = None
        self.emit("customer.subscription.deleted", sub, diff(before, sub))

    # ---- time ------------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Run every due transition in due-time order (called after each clock advance)."""
        with self.store.lock:
            for _ in range(100000):
                due = self._next_due()
                if due is None or due[0] > self.emu.clock.now():
                    return
                self._at = int(due[0])
                try:
                    due[2]()
                finally:
                    self._at = None

    def _next_due(self) -> tuple[float, int, Callable[[], None]] | None:
        candidates: list[tuple[float, int, Callable[[], None]]] = []
        for sub in self.store.all("subscription"):
            side = self.store.side(sub["id"])
            status = sub["status"]
            if status in ("canceled", "incomplete_expired", "paused"):
                continue
            item = sub["items"]["data"][0]
            end = item["current_period_end"]
            if status == "incomplete":
                if not side.get("async_payment"):
                    candidates.append((sub["created"] + INCOMPLETE_EXPIRY, 0, self._expire_incomplete(sub)))
                continue
            pending = sub.get("pending_update")
            if pending:
                candidates.append((pending["expires_at"], 0, self._expire_pending_update(sub)))
            resumes_at = (sub.get("pause_collection") or {}).get("resumes_at")
            if resumes_at:
                candidates.append((resumes_at, 0, self._unpause_collection(sub)))
            upcoming_at = end - self.invoice_upcoming_days * DAY
            if (
                self.invoice_upcoming_days > 0
                and not sub["cancel_at_period_end"]
                and side.get("upcoming_for") != end
                and upcoming_at > item["current_period_start"]
            ):
                candidates.append((upcoming_at, 0, self._invoice_upcoming(sub)))
            if status == "trialing" and sub["trial_end"]:
                twe = sub["trial_end"] - TRIAL_WILL_END_BEFORE
                if not side.get("trial_will_end_sent") and twe > sub["trial_start"]:
                    candidates.append((twe, 0, self._trial_will_end(sub)))
            if sub["cancel_at"] and sub["cancel_at"] < end:
                candidates.append((sub["cancel_at"], 1, self._cancel_now(sub)))
            candidates.append((end, 2, self._period_end(sub)))
        for inv in self.store.all("invoice"):
            npa = inv.get("next_payment_attempt")
            if inv["status"] == "open" and npa:
                candidates.append((npa, 3, self._retry_invoice(inv)))
            settles = self.store.side(inv["id"]).get("async_settles_at")
            if inv["status"] == "open" and settles:
                candidates.append((settles, 3, self._settle_async(inv)))
        for cs in self.store.all("checkout.session"):
            if cs["status"] == "open":
                candidates.append((cs["expires_at"], 4, self._expire_session(cs)))
        candidates.extend(self.emu.pricing_plans.due())
        meter_due = self._meter_errors_due()
        if meter_due is not None:
            candidates.append((meter_due, 5, self._flush_meter_errors_due))
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c[0], c[1]))

    def _expire_incomplete(self, sub: Obj) -> Callable[[], None]:
        def run() -> None:
            inv = self.store.find(sub["latest_invoice"])
            if inv is not None and inv["status"] == "open":
                before = copy.deepcopy(inv)
                inv["status"] = "void"
                inv["status_transitions"]["voided_at"] = self.now()
                self.emit("invoice.voided", inv, diff(before, inv))
            self.set_status(sub, "incomplete_expired", ended_at=self.now())

        return run

    def _trial_will_end(self, sub: Obj) -> Callable[[], None]:
        def run() -> None:
            self.store.side(sub["id"])["trial_will_end_sent"] = True
            self.emit("customer.subscription.trial_will_end", sub)

        return run

    def _cancel_now(self, sub: Obj) -> Callable[[], None]:
        return lambda: self.cancel(sub)

    def _expire_session(self, cs: Obj) -> Callable[[], None]:
        def run() -> None:
            cs["status"] = "expired"
            self.emit("checkout.session.expired", cs)

        return run

    def _period_end(self, sub: Obj) -> Callable[[], None]:
        def run() -> None:
            if sub["cancel_at_period_end"]:
                self.cancel(sub)
                return
            before = copy.deepcopy(sub)
            was_trial = sub["status"] == "trialing"
            old_start = sub["items"]["data"][0]["current_period_start"]
            for item in sub["items"]["data"]:
                rec = item["price"].get("recurring") or {"interval": "month"}
                item["current_period_start"] = item["current_period_end"]
                item["current_period_end"] = add_interval(
                    item["current_period_end"], rec["interval"], rec.get("interval_count", 1)
                )
            item = sub["items"]["data"][0]
            start, end = item["current_period_start"], item["current_period_end"]
            if was_trial:
                cus = self.store.find(sub["customer"]) or {}
                has_pm = bool(sub["default_payment_method"] or cus["invoice_settings"]["default_payment_method"])
                missing = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
                if not has_pm and missing == "cancel":
                    self.cancel(sub, reason="cancellation_requested")
                    return
                if not has_pm and missing == "pause":
                    sub["status"] = "paused"
                    sub["pause_collection"] = None
                    self.emit("customer.subscription.paused", sub)
                    self.emit("customer.subscription.updated", sub, diff(before, sub))
                    return
                sub["status"] = "active"
            if sub["status"] == "paused":
                return
            pending = self.store.side(sub["id"]).pop("pending_prorations", [])
            lines = pending + self.period_lines(sub, start, end, usage_start=None if was_trial else old_start)
            reason = "subscription_cycle"
            self.emit("customer.subscription.updated", sub, diff(before, sub))
            if sub.get("pause_collection"):
                self.paused_collection_invoice(sub, lines)
                return
            inv = self.issue_invoice(sub, sub["customer"], lines, reason)
            if sub["status"] == "unpaid":
                inv["auto_advance"] = False
                return
            outcome = self.collect(inv, sub)
            self._after_collection(sub, inv, outcome)

        return run

    def _after_collection(self, sub: Obj, inv: Obj, outcome: str) -> None:
        if outcome == "paid":
            if sub["status"] in ("past_due", "unpaid"):
                self.set_status(sub, "active")
            return
        side = self.store.side(inv["id"])
        side.setdefault("retries_left", self.dunning_retries)
        if side["retries_left"] > 0:
            inv["next_payment_attempt"] = self.now() + self.dunning_retry_interval
        else:
            inv["next_payment_attempt"] = None
        if sub["status"] in ("active", "trialing"):
            self.set_status(sub, "past_due")

    def _retry_invoice(self, inv: Obj) -> Callable[[], None]:
        def run() -> None:
            side = self.store.side(inv["id"])
            side["retries_left"] = side.get("retries_left", self.dunning_retries) - 1
            inv["next_payment_attempt"] = None
            sub_ref = (inv["parent"].get("subscription_details") or {}).get("subscription")
            sub = self.store.find(sub_ref) if sub_ref else None
            outcome = self.collect(inv, sub)
            if outcome == "paid":
                if sub is not None and sub["status"] in ("past_due", "unpaid"):
                    self.set_status(sub, "active")
                return
            if side["retries_left"] > 0:
                inv["next_payment_attempt"] = self.now() + self.dunning_retry_interval
                return
            self._dunning_exhausted(inv, sub)

        return run

    def _dunning_exhausted(self, inv: Obj, sub: Obj | None) -> None:
        """Stripe's "manage failed payments" settings once all retries failed."""
        ppsub_id = self.store.side(inv["id"]).get("pricing_plan_subscription")
        if ppsub_id:
            self.emu.pricing_plans.collection_failed_for_good(ppsub_id)
        if self.dunning_mark_uncollectible:
            self.mark_uncollectible(inv)
        if sub is None or sub["status"] != "past_due":
            return
        if self.dunning_end_action == "canceled":
            self.cancel(sub, reason="payment_failed")
        elif self.dunning_end_action == "unpaid":
            self.set_status(sub, "unpaid")

    def mark_uncollectible(self, inv: Obj) -> None:
        before = copy.deepcopy(inv)
        inv["status"] = "uncollectible"
        inv["next_payment_attempt"] = None
        inv["auto_advance"] = False
        inv["status_transitions"]["marked_uncollectible_at"] = self.now()
        self.emit("invoice.marked_uncollectible", inv, diff(before, inv))
        self.emit("invoice.updated", inv, diff(before, inv))

    def void_invoice(self, inv: Obj) -> None:
        before = copy.deepcopy(inv)
        inv["status"] = "void"
        inv["next_payment_attempt"] = None
        inv["auto_advance"] = False
        inv["amount_remaining"] = 0
        inv["status_transitions"]["voided_at"] = self.now()
        self.emit("invoice.voided", inv, diff(before, inv))

    # ---- upcoming invoices, paused collection, pending updates ----------------------------------------

    def preview_next_invoice(self, sub: Obj) -> Obj:
        """The next renewal invoice as `invoice.upcoming` shows it (no id, never saved)."""
        preview = copy.deepcopy(sub)
        if preview["status"] == "trialing":
            preview["status"] = "active"
        item = preview["items"]["data"][0]
        rec = item["price"].get("recurring") or {"interval": "month"}
        start = item["current_period_end"]
        end = add_interval(start, rec["interval"], rec.get("interval_count", 1))
        usage_start = None if sub["status"] == "trialing" else item["current_period_start"]
        pending = copy.deepcopy(self.store.side(sub["id"]).get("pending_prorations", []))
        lines = pending + self.period_lines(preview, start, end, usage_start=usage_start)
        inv = self.build_invoice(sub["customer"], sub, lines, "upcoming", start, end, save=False)
        inv["id"] = None
        for line in inv["lines"]["data"]:
            line["invoice"] = None
        inv["lines"]["url"] = "/v1/invoices/upcoming/lines"
        inv["next_payment_attempt"] = start
        return inv

    def _invoice_upcoming(self, sub: Obj) -> Callable[[], None]:
        def run() -> None:
            self.store.side(sub["id"])["upcoming_for"] = sub["items"]["data"][0]["current_period_end"]
            self.emit("invoice.upcoming", self.preview_next_invoice(sub))

        return run

    def _unpause_collection(self, sub: Obj) -> Callable[[], None]:
        def run() -> None:
            before = copy.deepcopy(sub)
            sub["pause_collection"] = None
            self.emit("customer.subscription.updated", sub, diff(before, sub))

        return run

    def paused_collection_invoice(self, sub: Obj, lines: list[Obj]) -> Obj:
        """A renewal while `pause_collection` is set: no payment; the invoice is kept as draft, voided or
        marked uncollectible per `pause_collection.behavior`."""
        behavior = sub["pause_collection"]["behavior"]
        start = min((ln["period"]["start"] for ln in lines), default=self.now())
        end = max((ln["period"]["end"] for ln in lines), default=self.now())
        inv = self.build_invoice(sub["customer"], sub, lines, "subscription_cycle", start, end, save=True)
        inv["auto_advance"] = False
        sub["latest_invoice"] = inv["id"]
        self.emit("invoice.created", inv)
        if behavior == "keep_as_draft":
            return inv
        before = copy.deepcopy(inv)
        inv["status"] = "open"
        inv["status_transitions"]["finalized_at"] = self.now()
        self.emit("invoice.finalized", inv, diff(before, inv))
        if behavior == "void":
            self.void_invoice(inv)
        else:
            self.mark_uncollectible(inv)
        return inv

    def start_pending_update(self, sub: Obj, saved_items: Obj, saved_anchor: int, inv: Obj) -> None:
        """Payment for a `pending_if_incomplete` update failed: roll the items back and keep the change pending."""
        applied = copy.deepcopy(sub["items"]["data"])
        before = copy.deepcopy(sub)
        sub["items"] = saved_items
        sub["billing_cycle_anchor"] = saved_anchor
        sub["pending_update"] = {
            "billing_cycle_anchor": None,
            "expires_at": self.now() + PENDING_UPDATE_TTL,
            "subscription_items": applied,
            "trial_end": None,
            "trial_from_plan": None,
        }
        inv["next_payment_attempt"] = None  # Stripe does not retry an invoice holding a pending update
        self.store.side(inv["id"])["pending_update_for"] = sub["id"]
        self.store.side(sub["id"])["pending_update_invoice"] = inv["id"]
        self.emit("customer.subscription.updated", sub, diff(before, sub))

    def _apply_pending_update(self, sub: Obj) -> None:
        pending = sub.get("pending_update")
        if not pending:
            return
        before = copy.deepcopy(sub)
        sub["items"]["data"] = copy.deepcopy(pending["subscription_items"])
        sub["pending_update"] = None
        self.store.side(sub["id"]).pop("pending_update_invoice", None)
        self.emit("customer.subscription.pending_update_applied", sub, diff(before, sub))
        self.emit("customer.subscription.updated", sub, diff(before, sub))

    def _expire_pending_update(self, sub: Obj) -> Callable[[], None]:
        def run() -> None:
            before = copy.deepcopy(sub)
            sub["pending_update"] = None
            inv = self.store.find(self.store.side(sub["id"]).pop("pending_update_invoice", None))
            if inv is not None and inv["status"] == "open":
                self.void_invoice(inv)
            self.emit("customer.subscription.pending_update_expired", sub, diff(before, sub))
            self.emit("customer.subscription.updated", sub, diff(before, sub))

        return run

    # ---- asynchronous (bank debit) payments ----------------------------------------------------------------

    def start_async_payment(self, inv: Obj, sub: Obj | None, succeed: bool) -> None:
        """The payment is processing: the invoice stays open until the clock reaches the settlement time."""
        side = self.store.side(inv["id"])
        side["async_settles_at"] = self.now() + int(self.async_payment_delay_days * DAY)
        side["async_succeed"] = succeed
        if sub is not None:
            self.store.side(sub["id"])["async_payment"] = inv["id"]
        inv["attempted"] = True
        inv["attempt_count"] += 1

    def _settle_async(self, inv: Obj) -> Callable[[], None]:
        def run() -> None:
            side = self.store.side(inv["id"])
            side.pop("async_settles_at", None)
            sub_ref = (inv["parent"].get("subscription_details") or {}).get("subscription")
            sub = self.store.find(sub_ref) if sub_ref else None
            if sub is not None:
                self.store.side(sub["id"]).pop("async_payment", None)
            if side.get("async_succeed"):
                self._mark_paid(inv)
                if sub is not None and sub["status"] == "incomplete":
                    self.set_status(sub, "active")
            else:
                before = copy.deepcopy(inv)
                self.emit("invoice.updated", inv, diff(before, inv))
                self.emit("invoice.payment_failed", inv)
                self.void_invoice(inv)
                if sub is not None and sub["status"] == "incomplete":
                    self.set_status(sub, "incomplete_expired", ended_at=self.now())
            for listener in self.async_settled_listeners:
                listener(inv, bool(side.get("async_succeed")))

        return run

    # ---- meters ----------------------------------------------------------------------------------------------

    def meter_by_event(self, event_name: str) -> Obj | None:
        """The active meter for an event name."""
        return next(
            (m for m in self.store.all("billing.meter") if m["event_name"] == event_name and m["status"] == "active"),
            None,
        )

    def queue_meter_error(self, event: Any, error: StripeError) -> None:
        """Accept an invalid meter event now and report it later, like Stripe's asynchronous validation."""
        payload = event if isinstance(event, dict) else {}
        name = str(payload.get("event_name") or "")
        meter = self.meter_by_event(name) or next(
            (m for m in self.store.all("billing.meter") if m["event_name"] == name), None
        )
        self.pending_meter_errors.setdefault(meter["id"] if meter else None, []).append(
            {
                "code": error.code,
                "message": error.message,
                "identifier": str(payload.get("identifier") or ""),
                "event_name": name,
                "at": self.emu.clock.now(),
            }
        )

    def _meter_errors_due(self) -> float | None:
        firsts = [errs[0]["at"] for errs in self.pending_meter_errors.values() if errs]
        return min(firsts) + self.meter_error_report_delay if firsts else None

    def _flush_meter_errors_due(self) -> None:
        self.flush_meter_errors()

    def flush_meter_errors(self) -> list[Obj]:
        """Emit one report per meter (and one `no_meter_found` for unknown event names); returns the v2 events."""
        from .events import iso

        out: list[Obj] = []
        now = self.emu.clock.now()
        for meter_id, errors in list(self.pending_meter_errors.items()):
            if not errors:
                continue
            by_code: dict[str, list[dict[str, Any]]] = {}
            for err in errors:
                by_code.setdefault(str(err["code"]), []).append(err)
            error_types = [
                {
                    "code": code,
                    "error_count": len(errs),
                    "sample_errors": [
                        {"error_message": e["message"], "request": {"identifier": e["identifier"]}}
                        for e in errs[:MAX_SAMPLE_ERRORS]
                    ],
                }
                for code, errs in by_code.items()
            ]
            meter = self.store.find(meter_id) if meter_id else None
            subject = f"meter '{meter['event_name']}'" if meter else "unknown event names"
            data = {
                "developer_message_summary": f"There were {len(errors)} invalid meter events for {subject}.",
                "reason": {"error_count": len(errors), "error_types": error_types},
                "validation_end": iso(now),
                "validation_start": iso(errors[0]["at"]),
            }
            if meter is not None:
                out.append(
                    self.emu.events.emit_v2(
                        "v1.billing.meter.error_report_triggered", meter["id"], "billing.meter", data
                    )
                )
            else:
                out.append(self.emu.events.emit_v2("v1.billing.meter.no_meter_found", None, None, data))
        self.pending_meter_errors.clear()
        return out

    def validate_meter_event(self, event: dict[str, Any], param_prefix: str = "") -> tuple[Obj, str, int, int]:
        """Shared v1/v2 checks: meter, customer, value, timestamp window. Returns (meter, customer, value, ts)."""
        name = event.get("event_name")
        if not name:
            raise invalid(
                "Missing required param: event_name.", param=param_prefix + "event_name", code="parameter_missing"
            )
        meter = self.meter_by_event(str(name))
        if meter is None:
            archived = next((m for m in self.store.all("billing.meter") if m["event_name"] == name), None)
            if archived is not None:
                raise invalid(
                    f"The meter '{archived['id']}' for event name '{name}' is inactive (archived).",
                    param=param_prefix + "event_name",
                    code="archived_meter",
                )
            raise invalid(
                f"No active meter was found for event name '{name}'.",
                param=param_prefix + "event_name",
                code="no_meter",
            )
        payload = event.get("payload") or {}
        key = meter["customer_mapping"]["event_payload_key"]
        customer = payload.get(key)
        if not customer:
            raise invalid(
                f"The payload must contain '{key}'.",
                param=f"{param_prefix}payload[{key}]",
                code="meter_event_no_customer_defined",
            )
        cus = self.store.find(str(customer))
        if cus is None or cus["object"] != "customer":
            raise invalid(
                f"No such customer: '{customer}'",
                param=f"{param_prefix}payload[{key}]",
                code="meter_event_customer_not_found",
            )
        value_key = meter["value_settings"]["event_payload_key"]
        raw_value = payload.get(value_key, "1")
        try:
            value = int(str(raw_value))
        except ValueError:
            raise invalid(
                f"The value '{raw_value}' is not an integer.",
                param=f"{param_prefix}payload[{value_key}]",
                code="meter_event_invalid_value",
            ) from None
        now = self.emu.clock.now()
        ts = event.get("timestamp")
        timestamp = int(now) if ts in (None, "") else int(ts)  # type: ignore[arg-type]
        check_meter_timestamp(timestamp, now, param_prefix + "timestamp")
        return meter, str(customer), value, timestamp

    def is_duplicate(self, identifier: str) -> bool:
        seen = self.meter_identifiers.get(identifier)
        return seen is not None and self.emu.clock.now() - seen < METER_DEDUP_WINDOW

    def record_meter_event(
        self, meter: Obj, customer: str, value: int, ts: int, identifier: str, source: str, payload: dict[str, Any]
    ) -> None:
        self.meter_identifiers[identifier] = self.emu.clock.now()
        self.meter_events.append(
            {
                "meter": meter["id"],
                "event_name": meter["event_name"],
                "customer": customer,
                "value": value,
                "timestamp": ts,
                "identifier": identifier,
                "source": source,
                "payload": payload,
                "received": self.emu.clock.now(),
            }
        )

    def usage_between(self, meter_id: str | None, customer: str, start: int, end: int) -> int:
        return sum(
            e["value"]
            for e in self.meter_events
            if (meter_id is None or e["meter"] == meter_id)
            and e["customer"] == customer
            and start <= e["timestamp"] < end
        )

    def meter_total(self, event_name: str, customer: str) -> int:
        return sum(e["value"] for e in self.meter_events if e["event_name"] == event_name and e["customer"] == customer)

    def new_session_token(self) -> tuple[str, int]:
        token = "mest_test_" + new_id("x", 40)[2:]
        expires = self.now() + SESSION_TOKEN_TTL
        self.sessions[token] = expires
        return token, expires

    def meters_check_session_token(self, token: str) -> None:
        expires = self.sessions.get(token)
        if expires is None:
            raise StripeError(401, "Invalid meter event session token.", code="api_key_invalid")
        if self.emu.clock.now() >= expires:
            raise StripeError(
                401,
                "The meter event session has expired: create a new one.",
                code="billing_meter_event_session_expired",
            )
