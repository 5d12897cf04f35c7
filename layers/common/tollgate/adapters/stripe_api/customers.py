"""Creating the user's Stripe customer, under the idempotency key the customer directory's generation names."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import stripe

from tollgate import errors
from tollgate.adapters.stripe_client import stripe_errors
from tollgate.observability import logger

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams


def key_replays_failure(exc: stripe.StripeError) -> bool:
    """Stripe will answer this key the same way for 24 h, so it can never succeed: an idempotency_error, or a 5xx
    it stored.

    A 5xx is stored when it is a replay, or when Stripe says not to retry it (``Stripe-Should-Retry: false``: the
    same key would only replay it). Other 5xx (Stripe's front door failing) were not stored; the SDK retried them.
    """
    if isinstance(exc, stripe.IdempotencyError):  # the SDK raises it for a 400 (or 404) idempotency_error only
        return True
    if exc.http_status == 409:  # a concurrent request with the key (APIError in the pinned SDK): retried, not stuck
        return False
    if not isinstance(exc, stripe.APIError) or (exc.http_status or 0) < 500:
        return False
    headers = {str(k).lower(): str(v).lower() for k, v in (exc.headers or {}).items()}
    return headers.get("idempotent-replayed") == "true" or headers.get("stripe-should-retry") == "false"


class StripeCustomerGateway:
    """Creates customers with the app's user id in metadata and the verified email, if any."""

    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str:
        params: CustomerCreateParams = {"metadata": {"app_user_id": user_id}}
        if email:
            params["email"] = email
        with stripe_errors("customers.create"):
            try:
                customer = self._client().v1.customers.create(
                    params=params, options={"idempotency_key": idempotency_key}
                )
            except stripe.StripeError as exc:
                if key_replays_failure(exc):
                    logger.warning("customer creation key unusable", status=exc.http_status, code=exc.code)
                    raise errors.CreationKeyUnusable() from exc
                raise
        return str(customer.id)
