"""The plan catalog as the product sells it: each configured plan resolved to its Stripe price.

The browser only ever names a plan *key*; prices, trials and quantity bounds come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: GET /plans may be cached by browsers and CDNs this long.
PLANS_CACHE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class PriceView:
    """The part of a Stripe Price the catalog needs."""

    id: str
    lookup_key: str | None
    active: bool
    recurring: bool
    unit_amount: int | None
    currency: str
    interval: str | None
    interval_count: int


@dataclass(frozen=True, slots=True)
class PricingPlanView:
    """The part of a v2 pricing plan (preview) the catalog needs."""

    id: str
    active: bool
    currency: str
    display_name: str


@dataclass(frozen=True, slots=True)
class ResolvedPlan:
    """A catalog plan with its Stripe price resolved: everything Checkout and the pricing page need."""

    key: str
    name: str
    price_id: str | None
    pricing_plan: str | None
    unit_amount: int | None
    currency: str
    interval: str | None
    interval_count: int
    trial_days: int
    min_quantity: int
    max_quantity: int

    def public_view(self) -> dict[str, Any]:
        return {
            "plan": self.key,
            "name": self.name,
            "amount": self.unit_amount,
            "currency": self.currency,
            "interval": self.interval,
            "interval_count": self.interval_count,
            "trial_days": self.trial_days,
            "min_quantity": self.min_quantity,
            "max_quantity": self.max_quantity,
        }


@dataclass(frozen=True, slots=True)
class ResolvedCatalog:
    plans: tuple[ResolvedPlan, ...]

    def get(self, key: str) -> ResolvedPlan | None:
        return next((p for p in self.plans if p.key == key), None)

    def by_price(self, price_id: str) -> ResolvedPlan | None:
        return next((p for p in self.plans if p.price_id == price_id), None)

    def public_view(self) -> dict[str, Any]:
        return {"plans": [p.public_view() for p in self.plans]}
