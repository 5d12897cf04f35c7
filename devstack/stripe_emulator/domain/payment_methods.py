"""Payment methods: Stripe's test cards (and `pm_card_*` magic ids), bank accounts, and how charges on them behave.

What a charge does is kept out of Stripe's object, in the store's side data (`behavior`).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from devstack.stripe_emulator.errors import invalid
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff

# card number -> (behaviour of charges on it, brand, last4)
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
MAGIC_PMS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequired": "4000002500003155",
}
# Renewals on a bank-debit method settle at once in the emulator (only Checkout's first payment waits).
RENEWAL_BEHAVIORS = {"decline_on_charge": "decline", "async_succeed": "succeed", "async_fail": "decline"}
# Off-session charges on a saved card: Stripe's 3155 card needs authentication only on-session ("if you set up
# this card and use the saved card for subsequent off-session payments, no further authentication is needed").
OFF_SESSION_BEHAVIORS = {"requires_action": "succeed"}


def charged(behavior: str, *, off_session: bool) -> str:
    """What a charge with a saved method of this behaviour does, on- or off-session."""
    return OFF_SESSION_BEHAVIORS.get(behavior, behavior) if off_session else behavior


class PaymentMethods:
    def __init__(self, store: Store, events: EventBus, time: BusinessTime) -> None:
        self.store = store
        self.events = events
        self.time = time

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
            "created": self.time.now(),
            "customer": customer["id"],
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        self.store.put(pm)
        self.store.side(pm["id"])["behavior"] = behavior
        self.events.emit("payment_method.attached", pm)
        if make_default:
            self._make_default(customer, pm)
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
            "created": self.time.now(),
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
        self.events.emit("payment_method.attached", pm)
        self._make_default(customer, pm)
        return pm

    def _make_default(self, customer: Obj, pm: Obj) -> None:
        before = copy.deepcopy(customer)
        customer["invoice_settings"]["default_payment_method"] = pm["id"]
        self.events.emit("customer.updated", customer, diff(before, customer))

    def attach(self, customer: Obj, pm_ref: str) -> Obj:
        """Attach an existing PaymentMethod, or a magic `pm_card_*` id (a new card, not made the default)."""
        if pm_ref in MAGIC_PMS:
            return self.attach_card(customer, MAGIC_PMS[pm_ref], make_default=False)
        pm = self.store.get(pm_ref, "payment_method", "payment_method")
        pm["customer"] = customer["id"]
        return pm

    def behavior_of(self, pm_id: str) -> str:
        return str(self.store.side(pm_id).get("behavior", "succeed"))

    def charge_behavior(self, customer_id: str, sub: Obj | None = None, *, off_session: bool) -> str:
        """How an automatic charge goes: the subscription's default method, else the customer's; off-session for
        renewals and retries, on-session where the customer may be present (Stripe's `off_session` defaults)."""
        pm_id = (sub or {}).get("default_payment_method")
        if not pm_id:
            cus = self.store.find(customer_id)
            pm_id = cus["invoice_settings"]["default_payment_method"] if cus else None
        if not pm_id:
            return "no_payment_method"
        behavior = self.behavior_of(pm_id)
        return charged(RENEWAL_BEHAVIORS.get(behavior, behavior), off_session=off_session)
