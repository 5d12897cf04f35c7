"""Customers: creation and updates (fields, metadata, default payment method)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj, Store

from .changes import diff
from .payment_methods import PaymentMethods

UPDATABLE_FIELDS = ("email", "name", "description", "phone")


class Customers:
    def __init__(self, store: Store, events: EventBus, time: BusinessTime, payment_methods: PaymentMethods) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.payment_methods = payment_methods

    def create(self, params: dict[str, Any]) -> Obj:
        cus: Obj = {
            "id": new_id("cus", 14),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.time.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "discount": None,
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
        self.events.emit("customer.created", cus)
        return cus

    def update(self, cus: Obj, params: dict[str, Any]) -> None:
        """Apply `POST /v1/customers/{id}` params; emits customer.updated when something changed."""
        before = copy.deepcopy(cus)
        for field in UPDATABLE_FIELDS:
            if field in params:
                cus[field] = params[field] or None
        if "metadata" in params:
            merge_metadata(cus, params["metadata"] or {})
        settings = params.get("invoice_settings") or {}
        if "default_payment_method" in settings:
            self._set_default_payment_method(cus, settings["default_payment_method"])
        changes = diff(before, cus)
        if changes:
            self.events.emit("customer.updated", cus, changes)

    def _set_default_payment_method(self, cus: Obj, ref: Any) -> None:
        if ref:
            pm = self.payment_methods.attach(cus, str(ref))
            cus["invoice_settings"]["default_payment_method"] = pm["id"]
        else:
            cus["invoice_settings"]["default_payment_method"] = None


def merge_metadata(obj: Obj, updates: dict[str, Any]) -> None:
    """Stripe's metadata update: an empty string unsets a key."""
    for k, v in updates.items():
        if v == "":
            obj["metadata"].pop(k, None)
        else:
            obj["metadata"][k] = v
