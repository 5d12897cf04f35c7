"""The catalog: products and prices (created, updated, archived; lookup keys move with ``transfer_lookup_key``)
and v2 pricing plans (seeded only: stripe-python 16.1.0 has no call that creates one)."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import invalid, not_found
from devstack.stripe_emulator.forms import as_bool, as_int, merge_metadata
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.store import Obj, Store


class Catalog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def make_product(self, params: dict[str, Any], oid: str | None = None) -> Obj:
        now = self.clock.now_int()
        oid = oid or (str(params["id"]) if params.get("id") else None)
        if oid is not None and self.store.find(oid) is not None:
            raise invalid(f"Product already exists: {oid}", param="id", code="resource_already_exists")
        return self.store.put(
            {
                "id": oid or new_id("prod", 14),
                "object": "product",
                "active": "active" not in params or as_bool(params["active"]),
                "created": now,
                "default_price": None,
                "description": params.get("description"),
                "images": [],
                "livemode": False,
                "marketing_features": [],
                "metadata": dict(params.get("metadata") or {}),
                "name": params["name"],
                "package_dimensions": None,
                "shippable": None,
                "statement_descriptor": None,
                "tax_code": None,
                "type": "service",
                "unit_label": None,
                "updated": now,
                "url": None,
            }
        )

    def update_product(self, product: Obj, params: dict[str, Any]) -> Obj:
        for key in ("name", "description", "url", "unit_label", "statement_descriptor"):
            if key in params:
                if key == "name" and not params[key]:
                    raise invalid("name cannot be empty.", param="name")
                product[key] = params[key] or None
        if "active" in params:
            product["active"] = as_bool(params["active"])
        if "default_price" in params:
            product["default_price"] = self.price(str(params["default_price"]), "default_price")["id"]
        if "metadata" in params:
            product["metadata"] = merge_metadata(product["metadata"], params["metadata"])
        product["updated"] = self.clock.now_int()
        return product

    def make_price(self, params: dict[str, Any], oid: str | None = None) -> Obj:
        product = self.store.get(str(params.get("product")), "product", "product")
        if not product["active"]:
            raise invalid(f"The product {product['id']} is archived: prices cannot be added to it.", param="product")
        recurring = params.get("recurring")
        meter = self._meter_of(recurring) if recurring else None
        lookup_key = params.get("lookup_key")
        if lookup_key:
            self._take_lookup_key(lookup_key, as_bool(params.get("transfer_lookup_key")))
        unit_amount = as_int(params.get("unit_amount", 0), "unit_amount")
        price: Obj = {
            "id": oid or new_id("price", 24),
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": self.clock.now_int(),
            "currency": params.get("currency", "usd"),
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": dict(params.get("metadata") or {}),
            "nickname": params.get("nickname"),
            "product": product["id"],
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        if recurring:
            price["type"] = "recurring"
            price["recurring"] = {
                "interval": recurring.get("interval", "month"),
                "interval_count": as_int(recurring.get("interval_count", 1), "recurring[interval_count]"),
                "meter": meter,
                "trial_period_days": None,
                "usage_type": recurring.get("usage_type", "licensed"),
            }
        self.store.put(price)
        if product["default_price"] is None:
            product["default_price"] = price["id"]
        return price

    def _meter_of(self, recurring: dict[str, Any]) -> str | None:
        """Stripe: a metered price names an active meter; a licensed one names none."""
        if recurring.get("interval") not in ("day", "week", "month", "year"):
            raise invalid("Invalid recurring[interval].", param="recurring[interval]")
        usage = recurring.get("usage_type", "licensed")
        meter_id = recurring.get("meter")
        if usage not in ("licensed", "metered"):
            raise invalid("Invalid recurring[usage_type].", param="recurring[usage_type]")
        if usage == "licensed":
            if meter_id:
                raise invalid("A meter can only be set on a metered price.", param="recurring[meter]")
            return None
        if not meter_id:
            return None  # the seed's legacy metered price without a meter
        meter = self.store.get(str(meter_id), "billing.meter", "recurring[meter]")
        if meter["status"] != "active":
            raise invalid(f"The meter {meter['id']} is not active.", param="recurring[meter]")
        return str(meter["id"])

    def update_price(self, price: Obj, params: dict[str, Any]) -> Obj:
        """Stripe lets a price change only its status, lookup key, nickname and metadata (amounts never)."""
        for frozen_field in ("unit_amount", "currency", "recurring", "product"):
            if frozen_field in params:
                raise invalid(f"Received unknown parameter: {frozen_field}", param=frozen_field)
        if "lookup_key" in params:
            lookup_key = params["lookup_key"] or None
            if lookup_key and lookup_key != price["lookup_key"]:
                self._take_lookup_key(lookup_key, as_bool(params.get("transfer_lookup_key")))
            price["lookup_key"] = lookup_key
        if "active" in params:
            price["active"] = as_bool(params["active"])
        if "nickname" in params:
            price["nickname"] = params["nickname"] or None
        if "metadata" in params:
            price["metadata"] = merge_metadata(price["metadata"], params["metadata"])
        return price

    def _take_lookup_key(self, lookup_key: str, transfer: bool) -> None:
        for other in self.store.all("price"):
            if other["lookup_key"] == lookup_key:
                if not transfer:
                    raise invalid(f"A price with lookup key '{lookup_key}' already exists.", param="lookup_key")
                other["lookup_key"] = None

    def price(self, price_id: str, param: str = "price") -> Obj:
        price = self.store.find(price_id)
        if price is None or price["object"] != "price":
            raise not_found("price", price_id, param)
        return price

    def add_pricing_plan(self, plan: dict[str, Any]) -> Obj:
        """A v2 pricing plan from the seed (its license fee and display name stay in side data)."""
        obj = self.store.put(
            {
                "id": plan["id"],
                "object": "v2.billing.pricing_plan",
                "active": True,
                "created": "2026-01-01T00:00:00.000Z",
                "currency": plan.get("currency", "usd"),
                "description": plan.get("description"),
                "display_name": plan["display_name"],
                "latest_version": plan["id"].replace("bpp_", "bppv_"),
                "live_version": plan["id"].replace("bpp_", "bppv_"),
                "livemode": False,
                "lookup_key": plan.get("lookup_key"),
                "metadata": {},
                "tax_behavior": "exclusive",
            }
        )
        self.store.side(plan["id"])["seed"] = plan
        return obj

    def plan_seed(self, plan_id: str) -> dict[str, Any]:
        seed: dict[str, Any] = self.store.side(plan_id).get("seed", {})
        return seed
