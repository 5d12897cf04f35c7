"""Building the StripeClient and translating Stripe SDK errors into the project's own.

One ``StripeClient`` instance per process (never the global ``stripe.api_key``), pinned to the SDK's API version,
with an explicit timeout and retry count so every call fits inside the function's and API Gateway's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tollgate import errors
from tollgate.config import Settings
from tollgate.observability import logger, tracer

if TYPE_CHECKING:
    # Imported where a Stripe call is made, not at init: most webhook deliveries never call Stripe, and the SDK
    # (with the requests stack it pulls in) is a tenth of a cold start (bench/first_request_bench.py).
    import stripe

#: The API version stripe==16.1.0 speaks (``stripe.api_version``; a test holds them equal); object shapes in the
#: code follow it.
PINNED_API_VERSION = "2026-10-28.endive"


def build_stripe_client(settings: Settings, api_key: str) -> stripe.StripeClient:
    import stripe

    # Stripe's calls go through requests: traced from the first client on (observability patches only botocore).
    tracer.patch(("requests",))
    base_addresses: dict[str, str] = {}
    if settings.stripe_api_base:
        base_addresses["api"] = settings.stripe_api_base
        base_addresses["files"] = settings.stripe_api_base
        base_addresses["connect"] = settings.stripe_api_base
    if settings.stripe_meter_events_base:
        base_addresses["meter_events"] = settings.stripe_meter_events_base
    return stripe.StripeClient(
        api_key,
        stripe_version=PINNED_API_VERSION,
        base_addresses=base_addresses,  # type: ignore[arg-type]
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
    )


def retry_after_from(error: stripe.StripeError, default: int) -> int:
    header = (error.headers or {}).get("retry-after") if error.headers else None
    try:
        return max(1, int(header)) if header else default
    except ValueError:
        return default


@contextmanager
def stripe_errors(operation: str) -> Iterator[None]:
    """Translate stripe.StripeError raised inside the block into tollgate errors (never a bare 500)."""
    try:
        yield
    except Exception as exc:
        import stripe  # already loaded: only a Stripe call raises its errors

        if isinstance(exc, stripe.StripeError):
            raise translated(operation, exc) from exc
        raise


def translated(operation: str, exc: stripe.StripeError) -> errors.TollgateError:
    """The tollgate error for one SDK error. Branches follow what stripe-python 16.1.0 raises per status: 429
    RateLimitError, 400/404 InvalidRequestError (IdempotencyError for idempotency_error), 401 AuthenticationError,
    402 CardError, 403 PermissionError, any other status APIError."""
    import stripe

    if exc.http_status == 409:
        # A conflict (an Idempotency-Key in flight, a locked object) clears in moments; it arrives as APIError.
        logger.warning("stripe conflict", operation=operation, request_id=exc.request_id)
        return errors.UpstreamUnavailable(retry_after_seconds=2)
    if isinstance(exc, stripe.RateLimitError):
        logger.warning("stripe rate limited", operation=operation, request_id=exc.request_id)
        return errors.UpstreamUnavailable(retry_after_seconds=retry_after_from(exc, 2))
    if isinstance(exc, (stripe.APIConnectionError, stripe.APIError)):
        logger.warning("stripe unavailable", operation=operation, error_type=type(exc).__name__)
        return errors.UpstreamUnavailable(retry_after_seconds=5)
    if isinstance(exc, stripe.InvalidRequestError) and (exc.http_status == 404 or exc.code == "resource_missing"):
        return errors.UpstreamNotFound()
    if isinstance(exc, stripe.InvalidRequestError):
        # Our request was wrong (configuration or code): log what is safe, hide details from the caller.
        logger.error(
            "stripe rejected request",
            operation=operation,
            code=exc.code,
            param=exc.param,
            status=exc.http_status,
            request_id=exc.request_id,
        )
    elif isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        logger.error("stripe credentials rejected", operation=operation, error_type=type(exc).__name__)
    else:
        logger.error("stripe error", operation=operation, error_type=type(exc).__name__, status=exc.http_status)
    return errors.UpstreamRejected()


def call_stripe[T](operation: str, fn: Callable[[], T]) -> T:
    with stripe_errors(operation):
        return fn()
