"""The seeded catalog (`devstack/seed.json`): meters, features, products and prices, pricing plans, the default
portal configuration, with fixed ids so tests and the local stack can name them."""

from __future__ import annotations

from typing import Any

from .domain.catalog import Catalog
from .domain.entitlements import Entitlements, feature_id
from .domain.meters import Meters
from .domain.portal import PortalConfigurations
from .store import Store


class SeedLoader:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        meters: Meters,
        entitlements: Entitlements,
        portal_configurations: PortalConfigurations,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.meters = meters
        self.entitlements = entitlements
        self.portal_configurations = portal_configurations

    def load(self, seed: dict[str, Any]) -> None:
        for meter in seed.get("meters", []):
            self._meter(meter)
        for feature in seed.get("features", []):
            self.entitlements.make_feature(
                feature["lookup_key"], feature.get("name"), oid=feature_id(feature["lookup_key"])
            )
        for prod in seed.get("products", []):
            self._product(prod)
        for plan in seed.get("pricing_plans", []):
            self.catalog.add_pricing_plan(plan)
        if seed.get("products"):
            # A seeded catalog comes with a saved default portal configuration; an empty account has none.
            self._default_portal_configuration()

    def _meter(self, meter: dict[str, Any]) -> None:
        self.meters.make_meter(
            {
                "display_name": meter.get("display_name", meter["event_name"]),
                "event_name": meter["event_name"],
                "default_aggregation": {"formula": meter.get("aggregation", "sum")},
                "customer_mapping": {
                    "event_payload_key": meter.get("customer_mapping_key", "stripe_customer_id"),
                    "type": "by_id",
                },
                "value_settings": {"event_payload_key": meter.get("value_key", "value")},
            },
            oid=meter.get("id"),
        )

    def _product(self, prod: dict[str, Any]) -> None:
        self.catalog.make_product({"name": prod["name"], "metadata": prod.get("metadata")}, oid=prod["id"])
        for lookup_key in prod.get("features", []):
            self.entitlements.attach(prod["id"], lookup_key)
        for p in prod.get("prices", []):
            self.catalog.make_price(
                {
                    "product": prod["id"],
                    "unit_amount": p["unit_amount"],
                    "currency": p.get("currency", "usd"),
                    "lookup_key": p.get("lookup_key"),
                    "nickname": p.get("nickname") or p.get("lookup_key"),
                    "recurring": self._recurring(p),
                },
                oid=p["id"],
            )

    def _recurring(self, p: dict[str, Any]) -> dict[str, Any] | None:
        if not p.get("interval"):
            return None
        recurring: dict[str, Any] = {"interval": p["interval"], "usage_type": p.get("usage_type", "licensed")}
        if p.get("meter_event_name"):
            meter = self.meters.meter_by_event(p["meter_event_name"])
            recurring["meter"] = meter["id"] if meter else None
        return recurring

    def _default_portal_configuration(self) -> None:
        """Every licensed price is offered for switching, per product."""
        licensed: dict[str, list[str]] = {}
        for price in reversed(self.store.all("price")):
            if (price.get("recurring") or {}).get("usage_type") == "licensed":
                licensed.setdefault(price["product"], []).append(price["id"])
        self.portal_configurations.make(
            {
                "features": {
                    "subscription_update": {
                        "enabled": True,
                        "products": [{"product": k, "prices": v} for k, v in licensed.items()],
                        "default_allowed_updates": ["price", "quantity"],
                        "proration_behavior": "create_prorations",
                    },
                    "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
                    "payment_method_update": {"enabled": True},
                    "invoice_history": {"enabled": True},
                }
            },
            oid="bpc_default",
            is_default=True,
        )
