"""A customer's details in Stripe and its deletion, for the app backend's service routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import stripe

from tollgate import errors
from tollgate.adapters.stripe_client import stripe_errors
from tollgate.domain.customer_accounts import CustomerDetails

if TYPE_CHECKING:
    from stripe.params import CustomerUpdateParams


class StripeCustomerAccountGateway:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def details(self, customer_id: str) -> CustomerDetails | None:
        try:
            with stripe_errors("customers.retrieve"):
                customer = self._client().v1.customers.retrieve(customer_id)
        except errors.UpstreamNotFound:
            return None
        if getattr(customer, "deleted", False):
            return None  # Stripe answers a deleted customer with {"id", "deleted": true}
        return CustomerDetails(email=customer.email, name=customer.name)

    def update_details(self, customer_id: str, changes: dict[str, str], idempotency_key: str) -> None:
        params: CustomerUpdateParams = {}
        if "email" in changes:
            params["email"] = changes["email"]
        if "name" in changes:
            params["name"] = changes["name"]
        with stripe_errors("customers.update"):
            self._client().v1.customers.update(customer_id, params=params, options={"idempotency_key": idempotency_key})

    def delete(self, customer_id: str, idempotency_key: str) -> None:
        try:
            with stripe_errors("customers.delete"):
                self._client().v1.customers.delete(customer_id, options={"idempotency_key": idempotency_key})
        except errors.UpstreamNotFound:
            return  # already deleted (by an earlier attempt, or in the Dashboard): the erasure's Stripe part is done
