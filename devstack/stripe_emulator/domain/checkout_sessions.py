"""Checkout Sessions in subscription mode: the session object, its line items, expiry.

Payment happens on the hosted page (`checkout_payments.py`); what a session will create (line items, pricing
plan, trial, subscription metadata) is kept in side data until then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.forms import as_bool
from devstack.stripe_emulator.ids import test_mode_id
from devstack.stripe_emulator.store import Obj, Store, list_object

from .catalog import Catalog

SESSION_TTL = 24 * 3600


@dataclass
class SessionTerms:
    """What a session sells, validated: line items (or a pricing plan), trial, subscription data."""

    mode: str
    items: list[dict[str, Any]] = field(default_factory=list)
    checkout_items: list[Any] = field(default_factory=list)
    plan_id: str | None = None
    trial_days: int | None = None
    customer: Any = None


class CheckoutSessions:
    def __init__(self, store: Store, clock: Clock, events: EventBus, catalog: Catalog) -> None:
        self.store = store
        self.clock = clock
        self.events = events
        self.catalog = catalog

    def line_items_of(self, cs: Obj) -> list[Obj]:
        """The session's line items as Stripe `item` objects."""
        return [self._item(li) for li in self.store.side(cs["id"]).get("line_items", [])]

    def _item(self, li: dict[str, Any]) -> Obj:
        price = self.store.objects[li["price"]]
        product = self.store.objects.get(price["product"], {})
        amount = int(price["unit_amount"] or 0) * int(li["quantity"] or 1)
        metered = (price.get("recurring") or {}).get("usage_type") == "metered"
        return {
            "id": li["id"],
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": 0 if metered else amount,
            "amount_tax": 0,
            "amount_total": 0 if metered else amount,
            "currency": price["currency"],
            "description": product.get("name"),
            "metadata": {},
            "price": price,
            "quantity": None if metered else li["quantity"],
        }

    def expand_line_items(self, cs: Obj) -> Obj:
        """`expand[]=line_items` on a session."""
        return list_object(self.line_items_of(cs), f"/v1/checkout/sessions/{cs['id']}/line_items")

    def open(self, params: dict[str, Any], terms: SessionTerms, base_url: str, stripe_version: str) -> Obj:
        """Store a new open session for validated `terms`."""
        cs_id = test_mode_id("cs")
        now = self.clock.now_int()
        currency, subtotal = self._subtotal(terms)
        amount = 0 if terms.trial_days else subtotal
        cs = _session_object(cs_id, params, terms, now, (currency, amount), f"{base_url}/c/pay/{cs_id}")
        self.store.put(cs)
        sub_data = params.get("subscription_data") or {}
        end_behavior = (sub_data.get("trial_settings") or {}).get("end_behavior") or {}
        self.store.side(cs_id).update(
            {
                "line_items": terms.items,
                "pricing_plan": terms.plan_id,
                "trial_days": terms.trial_days,
                "subscription_metadata": dict(sub_data.get("metadata") or {}),
                "missing_pm_behavior": end_behavior.get("missing_payment_method", "create_invoice"),
                "stripe_version": stripe_version,
            }
        )
        return cs

    def _subtotal(self, terms: SessionTerms) -> tuple[str, int]:
        currency = "usd"
        subtotal = 0
        for li in terms.items:
            price = self.store.objects[li["price"]]
            currency = price["currency"]
            subtotal += int(price["unit_amount"] or 0) * int(li["quantity"] or 0)
        if terms.plan_id:
            seed = self.catalog.plan_seed(terms.plan_id)
            subtotal = int(seed.get("monthly_license_fee", 0))
        return currency, subtotal

    def expire(self, cs: Obj) -> None:
        cs["status"] = "expired"
        self.events.emit("checkout.session.expired", cs)


def _session_object(
    cs_id: str, p: dict[str, Any], terms: SessionTerms, now: int, money: tuple[str, int], url: str
) -> Obj:
    currency, amount = money
    session: Obj = {
        "id": cs_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": as_bool(p["allow_promotion_codes"]) if "allow_promotion_codes" in p else None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {
            "enabled": as_bool((p.get("automatic_tax") or {}).get("enabled")),
            "liability": None,
            "provider": None,
            "status": None,
        },
        "billing_address_collection": p.get("billing_address_collection"),
        "cancel_url": p.get("cancel_url"),
        "client_reference_id": p.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": terms.customer,
        "customer_account": None,
        "customer_creation": None if terms.customer else "always",
        "customer_details": None,
        "customer_email": p.get("customer_email"),
        "discounts": [],
        "expires_at": now + SESSION_TTL,
        "integration_identifier": None,
        "invoice": None,
        # Stripe: invoice_creation is for payment mode; a subscription's invoices exist anyway.
        "invoice_creation": None,
        "livemode": False,
        "locale": p.get("locale"),
        "managed_payments": None,
        "metadata": dict(p.get("metadata") or {}),
        "mode": terms.mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": None,
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": p.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": p.get("ui_mode", "hosted"),
        "url": url,
        "wallet_options": None,
    }
    if terms.checkout_items:
        # Preview only (Stripe-Version ...preview, sdk_params.PREVIEW_PARAMETERS): a line_items session has no such key.
        session["checkout_items"] = terms.checkout_items
    return session
