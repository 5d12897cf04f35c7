"""The app backend's service routes on a user's account: update the Stripe customer's details, erase the user.

Called over IAM-authorized routes (never with a user's JWT): the backend that owns user accounts keeps Stripe's
copy of the email and name in step, and forwards erasure requests. Stripe stays the source of truth for details;
the table holds no email or name, so an update writes only to Stripe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain.customer_accounts import (
    CustomerDetails,
    details_update,
    details_update_key,
    erasure_blocker,
    erasure_key,
)
from tollgate.observability import logger
from tollgate.ports.storage import CustomerDirectory, SubscriptionRepository
from tollgate.ports.stripe import CustomerAccountGateway


@dataclass
class CustomerAccountService:
    directory: CustomerDirectory
    subscriptions: SubscriptionRepository
    stripe: CustomerAccountGateway
    clock: Callable[[], float] = time.time

    def update_details(self, user_id: str, wanted: CustomerDetails) -> dict[str, Any]:
        """Sends only what differs from Stripe's current details; nothing when Stripe already has them."""
        customer_id = self.directory.customer_for_user(user_id)
        current = self.stripe.details(customer_id) if customer_id else None
        if customer_id is None or current is None:
            raise errors.NotFound("the user has no Stripe customer yet")
        changes = details_update(current, wanted)
        if changes:
            self.stripe.update_details(customer_id, changes, details_update_key(customer_id, current, changes))
        logger.info("customer details", updated_fields=sorted(changes))  # field names only, never the values
        return {"user_id": user_id, "updated": sorted(changes)}

    def erase(self, user_id: str) -> dict[str, Any]:
        """Deletes the user's Stripe customer and forgets the user in the table. Refused (409) while a subscription
        Stripe may still collect on exists. Stripe keeps the invoices (billing records the law requires), the table
        keeps the subscription history under the customer id only."""
        record = self.directory.lookup(user_id)
        customer_id = record.customer_id
        deleted_in_stripe = False
        if customer_id is not None and not record.deleted:
            blocking = erasure_blocker(self.subscriptions.for_customer(customer_id), int(self.clock()))
            if blocking is not None:
                raise errors.Conflict("the user has a subscription Stripe may still collect on: cancel it first")
            self.stripe.delete(customer_id, erasure_key(customer_id))
            deleted_in_stripe = True
        self.directory.erase(user_id, customer_id)
        logger.info("user erased", had_customer=customer_id is not None)
        return {"user_id": user_id, "erased": True, "stripe_customer_deleted": deleted_in_stripe}
