"""What the product asks of Stripe. Every method raises ``tollgate.errors`` (never an SDK error): UpstreamNotFound
for a 404, UpstreamUnavailable for throttling and outages, UpstreamRejected for a request Stripe refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tollgate.domain.cancellation import LiveSubscription
    from tollgate.domain.catalog import PriceView, PricingPlanView
    from tollgate.domain.customer_accounts import CustomerDetails
    from tollgate.domain.plan_changes import ProrationPreview, SubscriptionView
    from tollgate.domain.provisioning import Account, Change


@dataclass(frozen=True, slots=True)
class SessionLink:
    """A hosted page Stripe opened: its id and the URL the browser goes to."""

    id: str
    url: str


class SessionGateway(Protocol):
    """The Stripe calls that open hosted pages (Checkout and the Customer Portal)."""

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str, stripe_version: str | None
    ) -> SessionLink: ...

    def create_portal_session(self, params: dict[str, Any], idempotency_key: str) -> str: ...


class CustomerGateway(Protocol):
    """The Stripe side of customer creation."""

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str:
        """The created (or replayed) customer's id; ``CreationKeyUnusable`` when the key can never succeed."""
        ...


class CustomerAccountGateway(Protocol):
    """A customer's details in Stripe, and its deletion (the app backend's service routes)."""

    def details(self, customer_id: str) -> CustomerDetails | None:
        """The customer's email and name; None when Stripe has no such (or a deleted) customer."""
        ...

    def update_details(self, customer_id: str, changes: dict[str, str], idempotency_key: str) -> None: ...

    def delete(self, customer_id: str, idempotency_key: str) -> None:
        """Deletes the customer; a customer Stripe already deleted counts as done."""
        ...


class CatalogGateway(Protocol):
    def prices_by_lookup_keys(self, lookup_keys: list[str]) -> list[PriceView]: ...

    def price(self, price_id: str) -> PriceView: ...

    def pricing_plan(self, pricing_plan_id: str) -> PricingPlanView: ...


class PlanChangeGateway(Protocol):
    def subscription(self, subscription_id: str) -> SubscriptionView: ...

    def preview(self, params: dict[str, Any]) -> ProrationPreview: ...

    def apply(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None: ...


class CancellationGateway(Protocol):
    """Cancel at period end and resume: the live subscription, and its one update."""

    def subscription(self, subscription_id: str) -> LiveSubscription: ...

    def update(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None: ...


class InvoiceGateway(Protocol):
    """The caller's invoices: one page for a customer (newest first) and an invoice's customer."""

    def list_invoices(
        self, customer_id: str, limit: int, starting_after: str | None
    ) -> tuple[list[Mapping[str, Any]], bool]: ...

    def invoice_customer(self, invoice_id: str) -> str | None: ...


class StripeReader(Protocol):
    """Fetch-latest: the objects as Stripe has them now, each as a plain dict."""

    def subscription(self, subscription_id: str) -> dict[str, Any]: ...

    def checkout_session(self, session_id: str) -> dict[str, Any]: ...

    def pricing_plan_subscription(self, pps_id: str) -> dict[str, Any]: ...

    def active_entitlement_keys(self, customer_id: str) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """One page of subscriptions listed from Stripe, with the second Stripe answered on its own clock."""

    subscriptions: list[dict[str, Any]]
    fetched_at: int


class SubscriptionSource(Protocol):
    """Every subscription of one customer (or of the account), page by page, for reconcile."""

    def pages(self, customer_id: str | None) -> Iterator[FetchedPage]: ...


class UndeliveredEvents(Protocol):
    """Stripe's events whose delivery to this endpoint did not succeed, created at or after a time (30 days max)."""

    def since(self, created_after: int) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class MeterView:
    """An active meter: the event name it aggregates, and how (``sum``, ``count``, ``last``)."""

    id: str
    event_name: str
    formula: str


class MeterTotals(Protocol):
    """What Stripe's meters counted (billing meter event summaries)."""

    def active_meters(self) -> list[MeterView]: ...

    def daily_totals(self, meter_id: str, customer_id: str, start: int, end: int) -> dict[int, int]:
        """The customer's aggregated value per UTC day (its start) in [start, end); days with none are absent."""
        ...


class SendStatus(StrEnum):
    """What Stripe did with one meter event."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SendResult:
    status: SendStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MeterEvent:
    identifier: str
    event_name: str
    customer_id: str
    value: int
    timestamp: int
    dimensions: Mapping[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, str]:
        # The meter's default mapping keys; values are strings on the wire.
        return {**self.dimensions, "stripe_customer_id": self.customer_id, "value": str(self.value)}


class MeterTransport(Protocol):
    """How accepted usage reaches Stripe's meters."""

    max_batch: int

    def send(self, events: Sequence[MeterEvent]) -> dict[str, SendResult]:
        """Send ``events`` (at most ``max_batch``); the result has one entry per identifier."""
        ...


@dataclass(frozen=True, slots=True)
class Executed:
    """What one provisioning request left: the object's id, and a new endpoint's signing secret (shown once)."""

    id: str
    signing_secret: str | None = None
    #: An EventBridge destination's partner event source name (``aws.partner/stripe.com/...``).
    event_source: str | None = None


class StripeAccount(Protocol):
    """The objects provisioning manages in one Stripe account. Errors: ``ProvisioningRefused`` with Stripe's
    message for a refused request, ``UpstreamUnavailable`` for throttling and outages."""

    def observe(self, owner: str) -> Account:
        """Products, prices, features, meters, portal configurations, endpoints (all pages), and the product
        features of ``owner``'s products."""
        ...

    def execute(self, change: Change, params: Mapping[str, Any], parent: str | None, idempotency_key: str) -> Executed:
        """Send one change (its Refs already resolved into ``params`` and ``parent``)."""
        ...

    def set_metadata(self, kind: str, object_id: str, metadata: Mapping[str, str], idempotency_key: str) -> None: ...


class PortalConfigurations(Protocol):
    """Finds the portal configuration provisioning made for this stack (None: the account's default)."""

    def owned_configuration(self, owner: str) -> str | None: ...
