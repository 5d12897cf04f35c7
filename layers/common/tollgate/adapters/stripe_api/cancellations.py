"""The Stripe calls of cancel at period end and resume: the live subscription, and its one update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import stripe

from tollgate.adapters.stripe_client import stripe_errors
from tollgate.domain.cancellation import LiveSubscription


class StripeCancellationGateway:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def subscription(self, subscription_id: str) -> LiveSubscription:
        with stripe_errors("subscriptions.retrieve"):
            sub = self._client().v1.subscriptions.retrieve(subscription_id)
        customer = sub.customer if isinstance(sub.customer, str) else sub.customer.id
        # API 2026-10-28: billing periods live on subscription items.
        ends = [int(item.current_period_end) for item in sub["items"].data if item.current_period_end]
        return LiveSubscription(
            id=sub.id,
            customer_id=customer,
            status=sub.status,
            cancel_at_period_end=bool(sub.cancel_at_period_end),
            cancel_at=int(sub.cancel_at) if sub.cancel_at else None,
            current_period_end=max(ends) if ends else None,
        )

    def update(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None:
        with stripe_errors("subscriptions.update"):
            self._client().v1.subscriptions.update(
                subscription_id, params=cast(Any, params), options={"idempotency_key": idempotency_key}
            )
