"""Paying a Checkout Session on the hosted page: card (with 3DS-like authentication), bank debit, pricing plan.

Events go out in Stripe's order; completion emits `checkout.session.completed`, whose id the page waits for
before redirecting to `success_url`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.store import Obj, Store

from .async_payments import AsyncPayments
from .customers import Customers
from .invoice_lines import InvoiceLines
from .invoices import ACTION_REQUIRED, PAID, Invoices
from .payment_methods import CARDS, PaymentMethods
from .pricing_plans import PricingPlans
from .subscriptions import ItemSpec, Subscriptions, first_item

BANK_DEBIT = "bank_debit"
BANK_DEBIT_FAILS = "bank_debit_fails"


@dataclass(frozen=True)
class Payment:
    """What the hosted page shows next."""

    outcome: Literal["completed", "declined", "unknown_card", "action_required", "not_incomplete", "failed"]
    event_id: str = ""
    status: str = ""


class CheckoutPayments:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        customers: Customers,
        payment_methods: PaymentMethods,
        invoices: Invoices,
        lines: InvoiceLines,
        subscriptions: Subscriptions,
        async_payments: AsyncPayments,
        pricing_plans: PricingPlans,
    ) -> None:
        self.store = store
        self.events = events
        self.customers = customers
        self.payment_methods = payment_methods
        self.invoices = invoices
        self.lines = lines
        self.subscriptions = subscriptions
        self.async_payments = async_payments
        self.pricing_plans = pricing_plans

    def pay(self, cs: Obj, card: str, email: str | None) -> Payment:
        """The customer submitted the page with a test card number or a bank-debit choice."""
        side = self.store.side(cs["id"])
        if card in (BANK_DEBIT, BANK_DEBIT_FAILS) and not side.get("pricing_plan"):
            return self._bank_debit(cs, card == BANK_DEBIT, email)
        if card not in CARDS:
            return Payment("unknown_card")
        behavior = CARDS[card][0]
        charged_now = not side.get("trial_days") and cs["amount_total"] > 0
        if behavior == "decline" or (behavior == "decline_on_charge" and charged_now):
            return Payment("declined")
        cus = self._customer_for(cs, email)
        self.payment_methods.attach_card(cus, card)
        plan_id = side.get("pricing_plan")
        if plan_id:
            inv = self._subscribe_to_plan(cs, cus, plan_id)
            return self._complete(cs, cus, None, inv)
        sub = self._create_subscription(cs, cus)
        inv, outcome = self.subscriptions.start(sub, "succeed" if behavior == "decline_on_charge" else behavior)
        if outcome == ACTION_REQUIRED:
            side["pending"] = {"subscription": sub["id"], "invoice": inv["id"], "customer": cus["id"]}
            return Payment("action_required")
        return self._complete(cs, cus, sub, inv)

    def authenticate(self, cs: Obj, pending: dict[str, str], succeed: bool) -> Payment:
        """The second step of a payment that required action."""
        sub = self.store.get(pending["subscription"], "subscription")
        inv = self.store.get(pending["invoice"], "invoice")
        cus = self.store.get(pending["customer"], "customer")
        if sub["status"] != "incomplete" or inv["status"] != "open":
            return Payment("not_incomplete", status=sub["status"])
        if self.subscriptions.complete_action(inv, sub, succeed) != PAID:
            return Payment("failed")
        self.store.side(cs["id"]).pop("pending", None)
        return self._complete(cs, cus, sub, inv)

    def on_async_settled(self, inv: Obj, succeeded: bool) -> None:
        """A bank-debit listener: tell the session's owner how the delayed payment ended."""
        cs = self.store.find(self.store.side(inv["id"]).get("checkout_session"))
        if cs is None:
            return
        if succeeded:
            cs["payment_status"] = "paid"
            self.events.emit("checkout.session.async_payment_succeeded", cs)
        else:
            self.events.emit("checkout.session.async_payment_failed", cs)

    # ---- steps ------------------------------------------------------------------------------------------------

    def _customer_for(self, cs: Obj, email: str | None) -> Obj:
        if cs["customer"]:
            return self.store.get(cs["customer"], "customer")
        return self.customers.create({"email": email or cs.get("customer_email") or "customer@example.com"})

    def _create_subscription(self, cs: Obj, cus: Obj) -> Obj:
        side = self.store.side(cs["id"])
        lines: list[ItemSpec] = [(self.store.objects[li["price"]], li["quantity"]) for li in side["line_items"]]
        return self.subscriptions.create(
            cus,
            lines,
            trial_days=side.get("trial_days"),
            metadata=side.get("subscription_metadata"),
            automatic_tax=cs["automatic_tax"]["enabled"],
            missing_pm_behavior=side.get("missing_pm_behavior", "create_invoice"),
        )

    def _subscribe_to_plan(self, cs: Obj, cus: Obj, plan_id: str) -> Obj:
        metadata = dict(self.store.side(cs["id"]).get("subscription_metadata") or {})
        ppsub, inv = self.pricing_plans.subscribe(cus["id"], plan_id, metadata)
        cs["pricing_plan_subscription"] = ppsub["id"]
        return inv

    def _bank_debit(self, cs: Obj, succeed: bool, email: str | None) -> Payment:
        """A delayed-notification payment: completed now with payment_status "unpaid", settled by the clock."""
        side = self.store.side(cs["id"])
        cus = self._customer_for(cs, email)
        self.payment_methods.attach_bank_account(cus, succeed)
        sub = self._create_subscription(cs, cus)
        if side.get("trial_days"):
            inv, _ = self.subscriptions.start(sub, "succeed")
            return self._complete(cs, cus, sub, inv)
        item = first_item(sub)
        period = self.lines.period_lines(sub, item["current_period_start"], item["current_period_end"])
        inv = self.invoices.issue(sub, sub["customer"], period, "subscription_create")
        self.async_payments.start(inv, sub, succeed)
        self.store.side(inv["id"])["checkout_session"] = cs["id"]
        return self._complete(cs, cus, sub, inv, payment_status="unpaid")

    def _complete(
        self, cs: Obj, cus: Obj, sub: Obj | None, inv: Obj | None, payment_status: str | None = None
    ) -> Payment:
        cs["status"] = "complete"
        cs["payment_status"] = "paid" if inv is not None and inv["amount_paid"] > 0 else "no_payment_required"
        if cs["payment_status"] == "no_payment_required" and inv is not None and inv["amount_due"] > 0:
            cs["payment_status"] = "paid"
        if payment_status is not None:
            cs["payment_status"] = payment_status
        cs["customer"] = cus["id"]
        cs["subscription"] = sub["id"] if sub else None
        cs["invoice"] = inv["id"] if inv else None
        cs["customer_details"] = {
            "address": None,
            "business_name": None,
            "email": cus.get("email"),
            "individual_name": None,
            "name": cus.get("name"),
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        event = self.events.emit("checkout.session.completed", cs)
        return Payment("completed", event_id=event["id"])
