"""Checkout sessions for the signed-in user.

The browser sends a plan key and a quantity, nothing else. The price, trial, URLs, customer and metadata are
chosen here from server configuration and the caller's verified identity, so a hostile body can at worst pick
another catalog plan or be refused.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from tollgate import errors
from tollgate.access import AccessPolicy, decide_access
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.catalog import ResolvedCatalog, ResolvedPlan
from tollgate.config import Settings
from tollgate.customers import CustomerDirectory, CustomerGateway, CustomerMissing, ensure_customer
from tollgate.observability import logger
from tollgate.rate_limit import RateLimiter

if TYPE_CHECKING:
    import stripe
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.bootstrap import Container
    from tollgate.http import Caller
    from tollgate.subscriptions.repository import SubscriptionRepository

#: Checkout with pricing plans (v2, private preview) needs a preview API version on that one request.
PRICING_PLAN_CHECKOUT_VERSION = "2025-09-30.preview;checkout_product_catalog_preview=v1"
#: Without a client Idempotency-Key, an identical request within this long of the first one is the same logical
#: request (a double click returns the same session instead of opening a second one).
DERIVED_KEY_WINDOW_SECONDS = 300
_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_\-:.]{1,128}$")


class CheckoutRequest(BaseModel):
    """The whole request body. Anything else (price, customer, URLs, trial, metadata) is rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    plan: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=10_000)] = 1


@dataclass(frozen=True, slots=True)
class SessionLink:
    id: str
    url: str


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


class SessionGateway(Protocol):
    """The Stripe calls that open hosted pages."""

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str, stripe_version: str | None
    ) -> SessionLink: ...

    def create_portal_session(self, params: dict[str, Any], idempotency_key: str) -> str: ...


class RequestWindows(Protocol):
    """Remembers when a logical request was first seen, so its repeats can share one idempotency key."""

    def first_seen(self, fingerprint: str, now: int, window_seconds: int) -> int:
        """When ``fingerprint`` was first seen within the last ``window_seconds``; ``now`` if it was not."""
        ...


def check_client_key(client_key: str | None) -> None:
    if client_key is not None and not _CLIENT_KEY.fullmatch(client_key):
        raise errors.InvalidRequest("invalid Idempotency-Key header")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def scoped_idempotency_key(
    operation: str,
    user_id: str,
    client_key: str | None,
    parts: tuple[str, ...],
    *,
    windows: RequestWindows,
    now: float,
    window: int,
) -> str:
    """A Stripe idempotency key scoped to the user (two users' keys never collide) and to the request's content.

    Honours the client's ``Idempotency-Key``. Without one, repeats of the same request within ``window`` seconds
    of the first one share a key. The window starts at the first request, not at a fixed clock boundary: a fixed
    bucket (``now // window``) splits a double click that straddles a boundary into two sessions. Including the
    content means reusing a client key with a different body opens a different session instead of failing in
    Stripe.
    """
    check_client_key(client_key)
    if client_key is not None:
        basis = f"client:{client_key}"
    else:
        fingerprint = _digest(operation, user_id, *parts)
        basis = f"first-seen:{windows.first_seen(fingerprint, int(now), window)}"
    return f"{operation}:{_digest(operation, user_id, basis, *parts)}"


class DynamoRequestWindows:
    """``REQUEST#{fingerprint}``/``REQUEST`` items holding ``first_seen``; DynamoDB's TTL removes them.

    One conditional ``UpdateItem``: it starts a new window when there is none or the old one has ended, and
    otherwise fails and returns the item, whose ``first_seen`` every repeat then shares. The fingerprint is a hash,
    so the item holds no user id.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def first_seen(self, fingerprint: str, now: int, window_seconds: int) -> int:
        try:
            with aws_errors("request_windows.first_seen"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": f"REQUEST#{fingerprint}"}, "sk": {"S": "REQUEST"}},
                    UpdateExpression="SET first_seen = :now, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(first_seen) OR first_seen <= :ended",
                    ExpressionAttributeValues={
                        ":now": {"N": str(now)},
                        ":ended": {"N": str(now - window_seconds)},
                        ":expires": {"N": str(now + window_seconds + 60)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = cast(Any, exc.response).get("Item") or {}
            return int(old["first_seen"]["N"])
        return now


def checkout_params(
    plan: ResolvedPlan, quantity: int, customer_id: str, user_id: str, options: CheckoutOptions
) -> dict[str, Any]:
    """The Checkout Session, built only from the catalog, configuration and the caller's identity."""
    metadata = {"app_user_id": user_id, "plan": plan.key}
    subscription_data: dict[str, Any] = {"metadata": dict(metadata)}
    if plan.trial_days:
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
    access_policy: AccessPolicy
    rate_limiter: RateLimiter
    sessions: SessionGateway
    windows: RequestWindows
    clock: Callable[[], float] = time.time

    def start(self, caller: Caller, request: CheckoutRequest, client_key: str | None) -> SessionLink:
        plan = require_plan(self.catalog(), request.plan, request.quantity)
        check_client_key(client_key)
        self.rate_limiter.admit(caller.user_id)
        key = scoped_idempotency_key(
            "checkout",
            caller.user_id,
            client_key,
            (plan.key, str(request.quantity)),
            windows=self.windows,
            now=self.clock(),
            window=DERIVED_KEY_WINDOW_SECONDS,
        )
        customer_id = self.directory.customer_for_user(caller.user_id)
        if customer_id is not None:
            self._refuse_if_subscribed(customer_id)
        else:
            customer_id = ensure_customer(self.directory, self.customers, caller.user_id, caller.email)
        try:
            link = self._open(plan, request.quantity, customer_id, caller, key)
        except CustomerMissing:
            # Stripe deleted the customer and its webhook has not arrived yet: record it, replace it, go on.
            logger.warning("mapped customer missing in Stripe", customer_id=customer_id)
            self.directory.mark_deleted(customer_id)
            customer_id = ensure_customer(self.directory, self.customers, caller.user_id, caller.email)
            link = self._open(plan, request.quantity, customer_id, caller, key)
        logger.info("checkout session created", session_id=link.id, customer_id=customer_id, plan=plan.key)
        return link

    def _open(self, plan: ResolvedPlan, quantity: int, customer_id: str, caller: Caller, key: str) -> SessionLink:
        params = checkout_params(plan, quantity, customer_id, caller.user_id, self.options)
        version = PRICING_PLAN_CHECKOUT_VERSION if plan.pricing_plan else None
        # The key covers the customer: once a deleted customer is replaced, the request is a new Stripe call (the
        # old key's stored answer is the deleted customer's 404, or a different request).
        return self.sessions.create_checkout_session(params, f"checkout:{_digest(key, customer_id)}", version)

    def _refuse_if_subscribed(self, customer_id: str) -> None:
        state = self.subscriptions.current_for_customer(customer_id)
        decision = decide_access(state, int(self.clock()), self.access_policy)
        if decision.allowed:
            raise errors.Conflict("you already have a subscription: manage it in the billing portal")

    @classmethod
    def from_container(cls, c: Container) -> CheckoutService:
        from tollgate.customers import StripeCustomerGateway
        from tollgate.subscriptions.repository import DynamoSubscriptionRepository

        return cls(
            options=CheckoutOptions.from_settings(c.settings),
            catalog=c.plan_catalog.get,
            directory=c.customer_directory,
            customers=StripeCustomerGateway(c.stripe()),
            subscriptions=DynamoSubscriptionRepository(c.dynamodb, c.settings.table_name),
            access_policy=AccessPolicy.from_settings(c.settings),
            rate_limiter=c.session_rate_limiter,
            sessions=StripeSessionGateway(c.stripe()),
            windows=DynamoRequestWindows(c.dynamodb, c.settings.table_name),
        )


@contextmanager
def customer_missing_as_domain_error() -> Iterator[None]:
    """Stripe's ``resource_missing`` on the ``customer`` parameter: the mapped customer was deleted."""
    import stripe

    try:
        yield
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing" and exc.param == "customer":
            raise CustomerMissing() from exc
        raise


class StripeSessionGateway:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str, stripe_version: str | None
    ) -> SessionLink:
        from tollgate.adapters.stripe_client import stripe_errors

        options: Any = {"idempotency_key": idempotency_key}
        if stripe_version:
            options["stripe_version"] = stripe_version
        with stripe_errors("checkout.sessions.create"), customer_missing_as_domain_error():
            session = self._client.v1.checkout.sessions.create(params=cast(Any, params), options=options)
        if not session.url:
            raise errors.UpstreamRejected()
        return SessionLink(id=str(session.id), url=str(session.url))

    def create_portal_session(self, params: dict[str, Any], idempotency_key: str) -> str:
        from tollgate.adapters.stripe_client import stripe_errors

        with stripe_errors("billing_portal.sessions.create"), customer_missing_as_domain_error():
            session = self._client.v1.billing_portal.sessions.create(
                params=cast(Any, params), options={"idempotency_key": idempotency_key}
            )
        return str(session.url)


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
