"""The Stripe side of the plan catalog: prices by lookup key or id, and v2 pricing plans (preview)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stripe

from tollgate.adapters.stripe_client import stripe_errors
from tollgate.domain.catalog import PriceView, PricingPlanView


def _price_view(price: Any) -> PriceView:
    recurring = getattr(price, "recurring", None)
    return PriceView(
        id=str(price.id),
        lookup_key=getattr(price, "lookup_key", None),
        active=bool(getattr(price, "active", False)),
        recurring=recurring is not None,
        unit_amount=getattr(price, "unit_amount", None),
        currency=str(price.currency),
        interval=str(recurring.interval) if recurring is not None else None,
        interval_count=int(getattr(recurring, "interval_count", 1) or 1) if recurring is not None else 1,
    )


class StripeCatalogGateway:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def prices_by_lookup_keys(self, lookup_keys: list[str]) -> list[PriceView]:
        with stripe_errors("prices.list"):
            page = self._client().v1.prices.list(params={"lookup_keys": lookup_keys, "active": True, "limit": 100})
        return [_price_view(p) for p in page.data]

    def price(self, price_id: str) -> PriceView:
        with stripe_errors("prices.retrieve"):
            return _price_view(self._client().v1.prices.retrieve(price_id))

    def pricing_plan(self, pricing_plan_id: str) -> PricingPlanView:
        # stripe-python 16.1.0 has no typed service for this preview resource; the raw request keeps the
        # client's key, timeout, retries and base address.
        with stripe_errors("pricing_plans.retrieve"):
            response = self._client().raw_request("get", f"/v2/billing/pricing_plans/{pricing_plan_id}")
            plan: Any = self._client().deserialize(response, api_mode="V2")
        return PricingPlanView(
            id=str(plan.id),
            active=bool(getattr(plan, "active", False)),
            currency=str(plan.currency),
            display_name=str(getattr(plan, "display_name", "")),
        )
