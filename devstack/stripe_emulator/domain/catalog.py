"""The catalog: products, prices (lookup keys) and v2 pricing plans."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import invalid, not_found
from devstack.stripe_emulator.forms import as_bool
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.store import Obj, Store


class Catalog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def make_product(self, params: dict[str, Any], oid: str | None = None) -> Obj:
        now = self.clock.now_int()
        return self.store.put(
            {
                "id": oid or new_id("prod", 14),
                "object": "product",
                "active": True,
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

    def make_price(self, params: dict[str, Any], oid: str | None = None) -> Obj:
        product = self.store.get(str(params.get("product")), "product", "product")
        lookup_key = params.get("lookup_key")
        if lookup_key:
            self._take_lookup_key(lookup_key, as_bool(params.get("transfer_lookup_key")))
        unit_amount = int(params.get("unit_amount", 0))
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
        recurring = params.get("recurring")
        if recurring:
            price["type"] = "recurring"
            price["recurring"] = {
                "interval": recurring.get("interval", "month"),
                "interval_count": int(recurring.get("interval_count", 1)),
                "meter": recurring.get("meter"),
                "trial_period_days": None,
                "usage_type": recurring.get("usage_type", "licensed"),
            }
        self.store.put(price)
        if product["default_price"] is None:
            product["default_price"] = price["id"]
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
