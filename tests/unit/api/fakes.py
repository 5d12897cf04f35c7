"""In-memory fakes of the customer-facing API's ports. Each records what would have reached Stripe."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tollgate import errors
from tollgate.config import PlanCatalog
from tollgate.domain.cancellation import LiveSubscription
from tollgate.domain.catalog import PriceView, PricingPlanView, ResolvedCatalog
from tollgate.domain.customers import CreationClaim, UserRecord
from tollgate.domain.subscriptions import SubscriptionState
from tollgate.errors import CustomerMissing
from tollgate.http.identity import Caller
from tollgate.ports.stripe import SessionLink
from tollgate.services.cancellations import CancellationService
from tollgate.services.catalog import resolve_catalog
from tollgate.services.checkout import CheckoutOptions, CheckoutService
from tollgate.services.portal import PortalOptions, PortalService

SUCCESS_URL = "https://app.example.test/billing/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://app.example.test/pricing"
RETURN_URL = "https://app.example.test/account"

CATALOG_JSON: dict[str, Any] = {
    "plans": [
        {"key": "starter", "name": "Starter", "price_lookup_key": "starter_monthly", "trial_days": 14},
        {"key": "team", "name": "Team", "price_id": "price_team_monthly", "min_quantity": 2, "max_quantity": 50},
        {"key": "usage-pro", "name": "Usage Pro", "pricing_plan": "bpp_test_usage_pro"},
    ]
}

PRICES = {
    "price_starter_monthly": PriceView("price_starter_monthly", "starter_monthly", True, True, 900, "usd", "month", 1),
    "price_team_monthly": PriceView("price_team_monthly", "team_monthly", True, True, 2900, "usd", "month", 1),
    "price_team_yearly": PriceView("price_team_yearly", "team_yearly", True, True, 29000, "usd", "year", 1),
}


class FakeCatalogGateway:
    def __init__(self, prices: dict[str, PriceView] | None = None) -> None:
        self.prices = dict(PRICES if prices is None else prices)
        self.calls: list[str] = []

    def prices_by_lookup_keys(self, lookup_keys: list[str]) -> list[PriceView]:
        self.calls.append("prices.list")
        return [p for p in self.prices.values() if p.lookup_key in lookup_keys]

    def price(self, price_id: str) -> PriceView:
        self.calls.append("prices.retrieve")
        if price_id not in self.prices:
            raise errors.UpstreamNotFound()
        return self.prices[price_id]

    def pricing_plan(self, pricing_plan_id: str) -> PricingPlanView:
        self.calls.append("pricing_plans.retrieve")
        return PricingPlanView(pricing_plan_id, True, "usd", "Usage Pro")


def resolved_catalog() -> ResolvedCatalog:
    return resolve_catalog(PlanCatalog.model_validate(CATALOG_JSON), FakeCatalogGateway())


class InMemoryDirectory:
    def __init__(self) -> None:
        self.user_to_customer: dict[str, str] = {}
        self.claims: set[str] = set()
        self.generations: dict[str, int] = {}
        self.deleted: set[str] = set()
        self.subscribed: set[str] = set()
        self.erased: set[str] = set()
        self._lock = threading.Lock()

    def customer_for_user(self, user_id: str) -> str | None:
        return self.lookup(user_id).live_customer_id

    def lookup(self, user_id: str) -> UserRecord:
        customer_id = self.user_to_customer.get(user_id)
        return UserRecord(
            customer_id, self.generations.get(user_id, 0), customer_id in self.deleted, user_id in self.subscribed
        )

    def mark_deleted(self, customer_id: str) -> None:
        self.deleted.add(customer_id)

    def user_for_customer(self, customer_id: str) -> str | None:
        return next((u for u, c in self.user_to_customer.items() if c == customer_id), None)

    def link(self, user_id: str, customer_id: str, *, subscribed: bool = False) -> None:
        with self._lock:
            if self.user_to_customer.get(user_id, customer_id) != customer_id:
                raise errors.Conflict()
            self.user_to_customer[user_id] = customer_id
            if subscribed:
                self.subscribed.add(user_id)

    def claim_creation(self, user_id: str, replacing: str | None = None) -> CreationClaim:
        with self._lock:
            if replacing is not None:
                if self.user_to_customer.get(user_id) != replacing or replacing not in self.deleted:
                    return CreationClaim(False, self.generations.get(user_id, 0))
                del self.user_to_customer[user_id]
                self.claims.add(user_id)
                self.generations[user_id] = self.generations.get(user_id, 0) + 1
                return CreationClaim(True, self.generations[user_id])
            won = user_id not in self.claims and user_id not in self.user_to_customer
            self.claims.add(user_id)
            return CreationClaim(won, self.generations.get(user_id, 0))

    def advance_generation(self, user_id: str, seen: int) -> bool:
        with self._lock:
            if user_id in self.user_to_customer or self.generations.get(user_id, 0) != seen:
                return False
            self.generations[user_id] = seen + 1
            self.claims.discard(user_id)
            return True

    def erase(self, user_id: str, customer_id: str | None) -> None:
        with self._lock:
            if customer_id:
                self.deleted.add(customer_id)
            self.user_to_customer.pop(user_id, None)
            self.subscribed.discard(user_id)
            self.erased.add(user_id)


class FakeStripeCustomers:
    def __init__(self) -> None:
        self.by_key: dict[str, str] = {}
        self.calls: list[dict[str, Any]] = []

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str:
        self.calls.append({"user_id": user_id, "email": email, "key": idempotency_key})
        return self.by_key.setdefault(idempotency_key, "cus_" + uuid.uuid4().hex[:14])


@dataclass
class FakeSessions:
    checkout_calls: list[dict[str, Any]] = field(default_factory=list)
    portal_calls: list[dict[str, Any]] = field(default_factory=list)
    #: Customers Stripe deleted: a session for one is ``resource_missing`` on ``customer``.
    deleted_customers: set[str] = field(default_factory=set)

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str, stripe_version: str | None
    ) -> SessionLink:
        self.checkout_calls.append({"params": params, "key": idempotency_key, "version": stripe_version})
        if params["customer"] in self.deleted_customers:
            raise CustomerMissing()
        session_id = "cs_test_" + uuid.uuid4().hex
        return SessionLink(session_id, f"https://checkout.stripe.test/c/pay/{session_id}")

    def create_portal_session(self, params: dict[str, Any], idempotency_key: str) -> str:
        self.portal_calls.append({"params": params, "key": idempotency_key})
        if params["customer"] in self.deleted_customers:
            raise CustomerMissing()
        return "https://billing.stripe.test/p/session/" + uuid.uuid4().hex


class FakeSubscriptions:
    def __init__(self, states: dict[str, SubscriptionState] | None = None) -> None:
        self.states = dict(states or {})

    def for_customer(self, customer_id: str) -> list[SubscriptionState]:
        state = self.states.get(customer_id)
        return [state] if state else []

    def current_for_customer(self, customer_id: str) -> SubscriptionState | None:
        return self.states.get(customer_id)


@dataclass
class FakeCancellations:
    """Stripe's side of cancel/resume: live subscriptions by id, and the updates sent (with their keys)."""

    live: dict[str, LiveSubscription] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)

    def subscription(self, subscription_id: str) -> LiveSubscription:
        if subscription_id not in self.live:
            raise errors.UpstreamNotFound()
        return self.live[subscription_id]

    def update(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None:
        self.updates.append({"id": subscription_id, "params": params, "key": idempotency_key})


class InMemoryRequestWindows:
    """First-seen windows as DynamoRequestWindows keeps them."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}

    def first_seen(self, fingerprint: str, now: int, window_seconds: int) -> int:
        started = self.first.get(fingerprint)
        if started is None or started <= now - window_seconds:
            self.first[fingerprint] = started = now
        return started


class AdmitAll:
    def __init__(self) -> None:
        self.admitted: list[str] = []

    def admit(self, user_id: str) -> None:
        self.admitted.append(user_id)


def subscription(customer_id: str, status: str = "active", **extra: Any) -> SubscriptionState:
    values: dict[str, Any] = {
        "subscription_id": "sub_" + customer_id.removeprefix("cus_"),
        "customer_id": customer_id,
        "status": status,
        "price_id": "price_starter_monthly",
        "plan_key": "starter",
        "current_period_start": 1_790_000_000,
        "current_period_end": 1_792_592_000,
    }
    values.update(extra)
    return SubscriptionState.model_validate(values)


@dataclass
class World:
    """One set of fakes wired into the real services."""

    directory: InMemoryDirectory = field(default_factory=InMemoryDirectory)
    customers: FakeStripeCustomers = field(default_factory=FakeStripeCustomers)
    sessions: FakeSessions = field(default_factory=FakeSessions)
    subscriptions: FakeSubscriptions = field(default_factory=FakeSubscriptions)
    limiter: Any = field(default_factory=AdmitAll)
    windows: Any = field(default_factory=InMemoryRequestWindows)
    cancellation_gateway: FakeCancellations = field(default_factory=FakeCancellations)
    now: float = 1_790_100_000.0
    trial_policy: Any = "once_per_user"

    def checkout(self) -> CheckoutService:
        catalog = resolved_catalog()
        return CheckoutService(
            options=CheckoutOptions(SUCCESS_URL, CANCEL_URL, allow_promotion_codes=True, automatic_tax=False),
            catalog=lambda: catalog,
            directory=self.directory,
            customers=self.customers,
            subscriptions=self.subscriptions,
            rate_limiter=self.limiter,
            sessions=self.sessions,
            windows=self.windows,
            clock=lambda: self.now,
            trial_policy=self.trial_policy,
        )

    def portal(self) -> PortalService:
        return PortalService(
            options=PortalOptions(RETURN_URL, "bpc_test_config"),
            directory=self.directory,
            subscriptions=self.subscriptions,
            rate_limiter=self.limiter,
            sessions=self.sessions,
            windows=self.windows,
            clock=lambda: self.now,
        )

    def cancellations(self) -> CancellationService:
        return CancellationService(
            directory=self.directory,
            subscriptions=self.subscriptions,
            gateway=self.cancellation_gateway,
            rate_limiter=self.limiter,
            windows=self.windows,
            clock=lambda: self.now,
        )


def caller(user_id: str, email: str | None = None) -> Caller:
    return Caller(user_id=user_id, email=email, scopes=frozenset({"billing"}))
