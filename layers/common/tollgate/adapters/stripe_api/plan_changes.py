"""The Stripe calls of a previewed plan change: the live subscription, the proration preview, the update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import stripe

from tollgate import errors
from tollgate.adapters.stripe_client import stripe_errors
from tollgate.domain.plan_changes import ProrationPreview, SubscriptionView


class StripePlanChangeGateway:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def subscription(self, subscription_id: str) -> SubscriptionView:
        with stripe_errors("subscriptions.retrieve"):
            sub = self._client().v1.subscriptions.retrieve(subscription_id)
        items = sub["items"].data
        if len(items) != 1:
            raise errors.Conflict("this subscription has several items: use the billing portal")
        item = items[0]
        customer = sub.customer if isinstance(sub.customer, str) else sub.customer.id
        # API 2026-10-28: billing periods live on subscription items.
        return SubscriptionView(
            id=sub.id,
            customer_id=customer,
            status=sub.status,
            item_id=item.id,
            price_id=item.price.id,
            quantity=int(item.quantity or 1),
            current_period_start=int(item.current_period_start),
            current_period_end=int(item.current_period_end),
        )

    def preview(self, params: dict[str, Any]) -> ProrationPreview:
        with stripe_errors("invoices.create_preview"):
            invoice = self._client().v1.invoices.create_preview(params=cast(Any, params))
        return ProrationPreview(amount_due=int(invoice.amount_due), currency=str(invoice.currency))

    def apply(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None:
        with stripe_errors("subscriptions.update"):
            self._client().v1.subscriptions.update(
                subscription_id, params=cast(Any, params), options={"idempotency_key": idempotency_key}
            )
