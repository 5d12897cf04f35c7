"""Opening Stripe's hosted pages: Checkout Sessions and Customer Portal sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import stripe

from tollgate import errors
from tollgate.adapters.stripe_client import stripe_errors
from tollgate.ports.stripe import SessionLink


@contextmanager
def customer_missing_as_domain_error() -> Iterator[None]:
    """Stripe's ``resource_missing`` on the ``customer`` parameter: the mapped customer was deleted."""
    try:
        yield
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing" and exc.param == "customer":
            raise errors.CustomerMissing() from exc
        raise


class StripeSessionGateway:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def create_checkout_session(
        self, params: dict[str, Any], idempotency_key: str, stripe_version: str | None
    ) -> SessionLink:
        options: Any = {"idempotency_key": idempotency_key}
        if stripe_version:
            options["stripe_version"] = stripe_version
        with stripe_errors("checkout.sessions.create"), customer_missing_as_domain_error():
            session = self._client().v1.checkout.sessions.create(params=cast(Any, params), options=options)
        if not session.url:
            raise errors.UpstreamRejected()
        return SessionLink(id=str(session.id), url=str(session.url))

    def create_portal_session(self, params: dict[str, Any], idempotency_key: str) -> str:
        with stripe_errors("billing_portal.sessions.create"), customer_missing_as_domain_error():
            session = self._client().v1.billing_portal.sessions.create(
                params=cast(Any, params), options={"idempotency_key": idempotency_key}
            )
        return str(session.url)
