"""Checkout sessions for the signed-in user.

The browser sends a plan key and a quantity, nothing else. The price, trial, URLs, customer and metadata are
chosen here from server configuration and the caller's verified identity, so a hostile body can at worst pick
another catalog plan or be refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.config import Settings
from tollgate.domain.access import TrialPolicy, decide_checkout, trial_allowed
from tollgate.domain.catalog import ResolvedCatalog, ResolvedPlan
from tollgate.observability import MetricName, MetricUnit, logger, metrics
from tollgate.ports.storage import CustomerDirectory, RateLimiter, RequestWindows, SubscriptionRepository
from tollgate.ports.stripe import CustomerGateway, SessionGateway, SessionLink
from tollgate.services.customers import ensure_customer
from tollgate.services.idempotency import check_client_key, digest, scoped_idempotency_key

#: Checkout with pricing plans (v2, private preview) needs a preview API version on that one request.
PRICING_PLAN_CHECKOUT_VERSION = "2025-09-30.preview;checkout_product_catalog_preview=v1"
#: Without a client Idempotency-Key, an identical request within this long of the first one is the same logical
#: request (a double click returns the same session instead of opening a second one).
DERIVED_KEY_WINDOW_SECONDS = 300


@dataclass(frozen=True, slots=True)
class CheckoutOptions:
    success_url: str
    cancel_url: str
    allow_promotion_codes: bool
    automatic_tax: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckoutOptions:
        if not settings.checkout_success_url or not settings.checkout_cancel_url:
            raise errors.ConfigurationError("CHECKOUT_SUCCESS_URL and CHECKOUT_CANCEL_URL are required")
        return cls(
            success_url=settings.checkout_success_url,
            cancel_url=settings.checkout_cancel_url,
            allow_promotion_codes=settings.checkout_allow_promotion_codes,
            automatic_tax=settings.checkout_automatic_tax,
        )


def checkout_params(
    plan: ResolvedPlan, quantity: int, customer_id: str, user_id: str, options: CheckoutOptions, *, trial: bool = True
) -> dict[str, Any]:
    """The Checkout Session, built only from the catalog, configuration and the caller's identity (``trial``: the
    server's trial eligibility decision)."""
    metadata = {"app_user_id": user_id, "plan": plan.key}
    subscription_data: dict[str, Any] = {"metadata": dict(metadata)}
    if plan.trial_days and trial:
        subscription_data["trial_period_days"] = plan.trial_days
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": user_id,
        "success_url": options.success_url,
        "cancel_url": options.cancel_url,
        "metadata": metadata,
        "subscription_data": subscription_data,
    }
    if plan.pricing_plan:
        params["checkout_items"] = [
            {
                "type": "pricing_plan_subscription_item",
                "pricing_plan_subscription_item": {"pricing_plan": plan.pricing_plan},
            }
        ]
    else:
        params["line_items"] = [{"price": plan.price_id, "quantity": quantity}]
    if options.allow_promotion_codes:
        params["allow_promotion_codes"] = True
    if options.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
        params["customer_update"] = {"address": "auto"}
    return params


def require_plan(catalog: ResolvedCatalog, plan_key: str, quantity: int) -> ResolvedPlan:
    plan = catalog.get(plan_key)
    if plan is None:
        raise errors.InvalidRequest("unknown plan")
    if not plan.min_quantity <= quantity <= plan.max_quantity:
        raise errors.InvalidRequest(f"quantity must be between {plan.min_quantity} and {plan.max_quantity}")
    return plan


@dataclass(frozen=True)
class CheckoutService:
    options: CheckoutOptions
    catalog: Callable[[], ResolvedCatalog]
    directory: CustomerDirectory
    customers: CustomerGateway
    subscriptions: SubscriptionRepository
    rate_limiter: RateLimiter
    sessions: SessionGateway
    windows: RequestWindows
    clock: Callable[[], float] = time.time
    trial_policy: TrialPolicy = "once_per_user"

    def start(
        self, user_id: str, email: str | None, plan_key: str, quantity: int, client_key: str | None
    ) -> SessionLink:
        plan = require_plan(self.catalog(), plan_key, quantity)
        check_client_key(client_key)
        self.rate_limiter.admit(user_id)
        key = scoped_idempotency_key(
            "checkout",
            user_id,
            client_key,
            (plan.key, str(quantity)),
            windows=self.windows,
            now=self.clock(),
            window=DERIVED_KEY_WINDOW_SECONDS,
        )
        record = self.directory.lookup(user_id)
        customer_id = record.live_customer_id
        had_subscription = record.had_subscription
        if customer_id is not None:
            had_subscription = self._refuse_if_subscribed(customer_id) or had_subscription
        else:
            customer_id = ensure_customer(self.directory, self.customers, user_id, email)
        trial = trial_allowed(self.trial_policy, had_subscription)
        try:
            link = self._open(plan, quantity, customer_id, user_id, key, trial=trial)
        except errors.CustomerMissing:
            # Stripe deleted the customer and its webhook has not arrived yet: record it, replace it, go on.
            logger.warning("mapped customer missing in Stripe", customer_id=customer_id)
            self.directory.mark_deleted(customer_id)
            customer_id = ensure_customer(self.directory, self.customers, user_id, email)
            link = self._open(plan, quantity, customer_id, user_id, key, trial=trial)
        logger.info("checkout session created", session_id=link.id, customer_id=customer_id, plan=plan.key, trial=trial)
        # A retried request answered with the same session counts again: a count of successful requests.
        metrics.add_metric(name=MetricName.CHECKOUT_SESSIONS_CREATED, unit=MetricUnit.Count, value=1)
        return link

    def _open(
        self, plan: ResolvedPlan, quantity: int, customer_id: str, user_id: str, key: str, *, trial: bool
    ) -> SessionLink:
        params = checkout_params(plan, quantity, customer_id, user_id, self.options, trial=trial)
        version = PRICING_PLAN_CHECKOUT_VERSION if plan.pricing_plan else None
        # The key covers the customer: once a deleted customer is replaced, the request is a new Stripe call (the
        # old key's stored answer is the deleted customer's 404, or a different request).
        return self.sessions.create_checkout_session(params, f"checkout:{digest(key, customer_id)}", version)

    def _refuse_if_subscribed(self, customer_id: str) -> bool:
        """Refuse while the customer has a subscription Stripe may still collect on; True when it had any."""
        states = self.subscriptions.for_customer(customer_id)
        decision = decide_checkout(states, int(self.clock()))
        if decision.remedy == "pay_invoice":
            raise errors.Conflict("your subscription has an unpaid invoice: pay it in the billing portal")
        if decision.remedy == "portal":
            raise errors.Conflict("you already have a subscription: manage it in the billing portal")
        return bool(states)


def stripe_call_budget_seconds(settings: Settings) -> float:
    """Worst-case wall time of one Stripe call: every attempt times out, plus stripe-python's largest backoffs.

    stripe-python sleeps min(0.5 * 2**(n-1), 5) seconds (jittered downwards, at least 0.5) before retry n and
    does not honour Retry-After, so this bound holds whatever Stripe answers.
    """
    retries = settings.stripe_max_network_retries
    backoff = sum(max(0.5, min(0.5 * 2.0 ** (n - 1), 5.0)) for n in range(1, retries + 1))
    return float(settings.stripe_timeout_seconds * (retries + 1) + backoff)


#: Stripe calls on the slowest request path: a new user's checkout (customer + session) and a plan-change
#: preview (subscription retrieve + invoice preview).
MAX_STRIPE_CALLS_PER_REQUEST = 2


def request_budget_seconds(settings: Settings, creation_wait_seconds: float) -> float:
    """Worst-case Stripe time (plus waiting for a concurrent customer creation) on any customer-facing route."""
    return MAX_STRIPE_CALLS_PER_REQUEST * stripe_call_budget_seconds(settings) + creation_wait_seconds
