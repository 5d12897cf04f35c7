"""The plan catalog: server-side plans (PLAN_CATALOG) resolved against Stripe once and cached.

The browser only ever names a plan *key*; prices, trials and quantity bounds come from here. Lookup keys are
resolved with one ``prices.list`` call for the whole catalog. A plan that does not resolve to an active recurring
price (or an active pricing plan) is a ConfigurationError naming the plan, raised the first time the function
needs its catalog (cold start), and not cached, so a fixed configuration recovers without a redeploy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tollgate import errors
from tollgate.config import Plan, PlanCatalog
from tollgate.domain.catalog import PriceView, PricingPlanView, ResolvedCatalog, ResolvedPlan
from tollgate.observability import logger
from tollgate.ports.stripe import CatalogGateway

#: Resolved prices are reused this long per execution environment; a price change shows up within the hour.
DEFAULT_CATALOG_TTL_SECONDS = 3600


def _from_price(plan: Plan, price: PriceView | None) -> ResolvedPlan:
    reference = plan.price_lookup_key or plan.price_id
    if price is None:
        raise errors.ConfigurationError(f"plan {plan.key!r}: no Stripe price matches {reference!r}")
    if not price.active or not price.recurring:
        raise errors.ConfigurationError(f"plan {plan.key!r}: price {price.id} is not an active recurring price")
    return ResolvedPlan(
        key=plan.key,
        name=plan.name,
        price_id=price.id,
        pricing_plan=None,
        unit_amount=price.unit_amount,
        currency=price.currency,
        interval=price.interval,
        interval_count=price.interval_count,
        trial_days=plan.trial_days,
        min_quantity=plan.min_quantity,
        max_quantity=plan.max_quantity,
    )


def resolve_catalog(catalog: PlanCatalog, gateway: CatalogGateway) -> ResolvedCatalog:
    """Every plan resolved against Stripe, or ConfigurationError naming the first plan that does not resolve."""
    lookup_keys = [p.price_lookup_key for p in catalog.plans if p.price_lookup_key]
    by_lookup: dict[str, PriceView] = {}
    if lookup_keys:
        for found in gateway.prices_by_lookup_keys(lookup_keys):
            if found.lookup_key:
                by_lookup[found.lookup_key] = found
    resolved: list[ResolvedPlan] = []
    for plan in catalog.plans:
        if plan.price_lookup_key:
            resolved.append(_from_price(plan, by_lookup.get(plan.price_lookup_key)))
        elif plan.price_id:
            resolved.append(_from_price(plan, _or_none(gateway.price, plan.price_id)))
        elif plan.pricing_plan:
            resolved.append(_from_pricing_plan(plan, _or_none(gateway.pricing_plan, plan.pricing_plan)))
    return ResolvedCatalog(tuple(resolved))


def _or_none[T](fetch: Callable[[str], T], object_id: str) -> T | None:
    """The fetched object, or None when Stripe has no such object."""
    try:
        return fetch(object_id)
    except errors.UpstreamNotFound:
        return None


def _from_pricing_plan(plan: Plan, pricing_plan: PricingPlanView | None) -> ResolvedPlan:
    if pricing_plan is None or not pricing_plan.active:
        raise errors.ConfigurationError(f"plan {plan.key!r}: pricing plan is missing or inactive")
    return ResolvedPlan(
        key=plan.key,
        name=plan.name,
        price_id=None,
        pricing_plan=pricing_plan.id,
        unit_amount=None,
        currency=pricing_plan.currency,
        interval=None,
        interval_count=1,
        trial_days=plan.trial_days,
        min_quantity=1,
        max_quantity=1,
    )


class CatalogCache:
    """The resolved catalog for this execution environment, refreshed after ``ttl_seconds``.

    A failed resolution is never cached; a failed *refresh* keeps serving the last good catalog (Stripe being
    briefly down must not take the pricing page with it).
    """

    def __init__(
        self,
        catalog: PlanCatalog | None,
        gateway_factory: Callable[[], CatalogGateway],
        *,
        ttl_seconds: float = DEFAULT_CATALOG_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._gateway_factory = gateway_factory
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._resolved: ResolvedCatalog | None = None
        self._resolved_at = 0.0

    def get(self) -> ResolvedCatalog:
        if self._catalog is None:
            raise errors.ConfigurationError("PLAN_CATALOG is not configured")
        with self._lock:
            fresh = self._resolved is not None and self._clock() - self._resolved_at < self._ttl
            if fresh and self._resolved is not None:
                return self._resolved
            try:
                resolved = resolve_catalog(self._catalog, self._gateway_factory())
            except errors.ConfigurationError as exc:
                # The log names the plan and the reason; the caller only learns that billing is misconfigured.
                logger.error("plan catalog does not resolve", problem=str(exc))
                raise errors.ConfigurationError("the plan catalog is unavailable") from exc
            except (errors.UpstreamUnavailable, errors.UpstreamRejected):
                if self._resolved is not None:
                    logger.warning("plan catalog refresh failed; serving the last good catalog")
                    return self._resolved
                raise
            self._resolved, self._resolved_at = resolved, self._clock()
            logger.info("plan catalog resolved", plans=len(resolved.plans))
            return resolved
