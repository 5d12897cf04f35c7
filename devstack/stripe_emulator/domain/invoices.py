"""Invoices: building, finalizing, collecting payment, and the terminal states (paid, void, uncollectible).

`paid_listeners` run after an invoice is paid (pending subscription updates, pricing-plan recovery), so the
modules that care about a payment depend on this one and not the other way round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff
from .payment_methods import PaymentMethods

# Outcomes of a payment attempt.
PAID = "paid"
FAILED = "failed"
ACTION_REQUIRED = "action_required"


def subscription_id_of(inv: Obj) -> str | None:
    sub_id: str | None = (inv["parent"].get("subscription_details") or {}).get("subscription")
    return sub_id


class Invoices:
    def __init__(self, store: Store, events: EventBus, time: BusinessTime, payment_methods: PaymentMethods) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.payment_methods = payment_methods
        # Called with (invoice, invoice before it was paid), after invoice.paid and invoice.payment_succeeded.
        self.paid_listeners: list[Callable[[Obj, Obj], None]] = []

    def subscription_of(self, inv: Obj) -> Obj | None:
        sub_id = subscription_id_of(inv)
        return self.store.find(sub_id) if sub_id else None

    # ---- building ---------------------------------------------------------------------------------------

    def build(
        self, customer_id: str, sub: Obj | None, lines: list[Obj], reason: str, start: int, end: int, save: bool
    ) -> Obj:
        """A draft invoice over `lines`; saved ones apply (and update) the customer's credit balance."""
        total = sum(line["amount"] for line in lines)
        cus = self.store.find(customer_id) or {}
        balance = int(cus.get("balance", 0))
        applied = min(total, -balance) if balance < 0 and total > 0 else 0
        due = max(0, total - applied)
        inv_id = new_id("in", 24) if save else "upcoming_" + new_id("in", 12)
        for line in lines:
            line["invoice"] = inv_id
        inv = self._draft(inv_id, cus, customer_id, sub, lines, reason, (start, end), (due, balance))
        if save:
            self.store.put(inv)
            if applied or total < 0:
                cus["balance"] = balance + applied + (-total if total < 0 else 0)
                inv["ending_balance"] = cus["balance"]
        return inv

    def _draft(
        self,
        inv_id: str,
        cus: Obj,
        customer_id: str,
        sub: Obj | None,
        lines: list[Obj],
        reason: str,
        period: tuple[int, int],
        due_and_balance: tuple[int, int],
    ) -> Obj:
        total = sum(line["amount"] for line in lines)
        start, end = period
        due, balance = due_and_balance
        return {
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
            "account_tax_ids": None,
            "application": None,
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": bool(sub and sub["automatic_tax"]["enabled"]),
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": None,
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "created": self.time.now(),
            "currency": lines[0]["currency"] if lines else "usd",
            "customer": customer_id,
            "custom_fields": None,
            "customer_account": None,
            "customer_address": cus.get("address"),
            "customer_email": cus.get("email"),
            "customer_name": cus.get("name"),
            "customer_phone": cus.get("phone"),
            "customer_shipping": cus.get("shipping"),
            "customer_tax_exempt": cus.get("tax_exempt", "none"),
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": None,
            "ending_balance": None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "url": f"/v1/invoices/{inv_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "on_behalf_of": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]} if sub else None,
                "type": "subscription_details" if sub else None,
            },
            "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
            "period_end": end,
            "period_start": start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": {
                "amount_tax_display": None,
                "pdf": {"page_size": "auto"},
                "template": None,
                "template_version": None,
            },
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": balance,
            "statement_descriptor": None,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            # Stripe's fixture still carries the pre-2025 `subscription` key, always null now: the
            # subscription is at parent.subscription_details.
            "subscription": None,
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": cus.get("test_clock"),
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": None,
        }

    def saved(self, sub: Obj | None, customer_id: str, lines: list[Obj], reason: str) -> Obj:
        """A saved draft spanning its lines' periods (no event yet)."""
        start = min((ln["period"]["start"] for ln in lines), default=self.time.now())
        end = max((ln["period"]["end"] for ln in lines), default=self.time.now())
        return self.build(customer_id, sub, lines, reason, start, end, save=True)

    def issue(self, sub: Obj | None, customer_id: str, lines: list[Obj], reason: str) -> Obj:
        """Create and finalize (invoice.created, invoice.finalized); the caller then collects."""
        inv = self.saved(sub, customer_id, lines, reason)
        self.events.emit("invoice.created", inv)
        cus = self.store.find(customer_id)
        seq = cus["next_invoice_sequence"] if cus else 1
        if cus:
            cus["next_invoice_sequence"] = seq + 1
        inv["number"] = f"{(cus or {}).get('invoice_prefix', 'EMU')}-{seq:04d}"
        inv["status"] = "open"
        inv["effective_at"] = self.time.now()
        inv["status_transitions"]["finalized_at"] = self.time.now()
        self.events.emit("invoice.finalized", inv)
        if sub is not None:
            sub["latest_invoice"] = inv["id"]
        return inv

    # ---- payment ------------------------------------------------------------------------------------------

    def collect(self, inv: Obj, sub: Obj | None, behavior: str | None = None, *, off_session: bool = True) -> str:
        """Attempt payment: PAID, FAILED or ACTION_REQUIRED (with Stripe's invoice events). Without a behaviour,
        the saved method is charged, off-session unless the caller says the customer is there."""
        if inv["amount_due"] == 0:
            self.mark_paid(inv)
            return PAID
        behavior = behavior or self.payment_methods.charge_behavior(inv["customer"], sub, off_session=off_session)
        before = copy.deepcopy(inv)
        inv["attempt_count"] += 1
        inv["attempted"] = True
        if behavior == "succeed":
            self.mark_paid(inv)
            return PAID
        if behavior == "requires_action":
            self.events.emit("invoice.payment_action_required", inv, diff(before, inv))
            return ACTION_REQUIRED
        self.fail_payment(inv, before)
        return FAILED

    def fail_payment(self, inv: Obj, before: Obj) -> None:
        self.events.emit("invoice.updated", inv, diff(before, inv))
        self.events.emit("invoice.payment_failed", inv)

    def mark_paid(self, inv: Obj) -> None:
        before = copy.deepcopy(inv)
        inv["status"] = "paid"
        inv["amount_paid"] = inv["amount_due"]
        inv["amount_remaining"] = 0
        inv["attempted"] = True
        inv["next_payment_attempt"] = None
        inv["status_transitions"]["paid_at"] = self.time.now()
        self.events.emit("invoice.paid", inv, diff(before, inv))
        self.events.emit("invoice.payment_succeeded", inv)
        for listener in self.paid_listeners:
            listener(inv, before)

    # ---- terminal states ----------------------------------------------------------------------------------

    def mark_uncollectible(self, inv: Obj) -> None:
        before = copy.deepcopy(inv)
        inv["status"] = "uncollectible"
        inv["next_payment_attempt"] = None
        inv["auto_advance"] = False
        inv["status_transitions"]["marked_uncollectible_at"] = self.time.now()
        self.events.emit("invoice.marked_uncollectible", inv, diff(before, inv))
        self.events.emit("invoice.updated", inv, diff(before, inv))

    def void(self, inv: Obj) -> None:
        before = copy.deepcopy(inv)
        inv["status"] = "void"
        inv["next_payment_attempt"] = None
        inv["auto_advance"] = False
        inv["amount_remaining"] = 0
        inv["status_transitions"]["voided_at"] = self.time.now()
        self.events.emit("invoice.voided", inv, diff(before, inv))

    def void_abandoned(self, inv: Obj) -> None:
        """The first invoice of a subscription that expired incomplete: only status and voided_at change."""
        before = copy.deepcopy(inv)
        inv["status"] = "void"
        inv["status_transitions"]["voided_at"] = self.time.now()
        self.events.emit("invoice.voided", inv, diff(before, inv))

    def stop_collecting(self, inv: Obj) -> None:
        """No more automatic attempts (the subscription it bills ended)."""
        inv["auto_advance"] = False
        inv["next_payment_attempt"] = None
