"""Plan changes with a price preview: the amount shown is the amount charged.

``preview`` asks Stripe for the proration of switching the caller's own subscription to a catalog plan at a fixed
``proration_date`` (``invoices.create_preview`` with ``proration_behavior=always_invoice``), stores that exact
change server-side under a random id, and returns a short-lived signed token naming it. ``apply`` verifies the
token (signature, expiry, caller), consumes it once, and updates the subscription with the same items and the same
``proration_date``, so Stripe invoices exactly the previewed proration.

The token and the records it stands for: ``tollgate.domain.plan_changes``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain.access import AccessPolicy, decide_access
from tollgate.domain.catalog import ResolvedCatalog
from tollgate.domain.plan_changes import TOKEN_TTL_SECONDS, PendingChange, SubscriptionView, TokenSigner
from tollgate.observability import logger
from tollgate.ports.storage import CustomerDirectory, PendingChangeStore, RateLimiter, SubscriptionRepository
from tollgate.ports.stripe import PlanChangeGateway
from tollgate.services.checkout import require_plan


@dataclass(frozen=True)
class PlanChangeService:
    catalog: Callable[[], ResolvedCatalog]
    directory: CustomerDirectory
    subscriptions: SubscriptionRepository
    access_policy: AccessPolicy
    rate_limiter: RateLimiter
    gateway: PlanChangeGateway
    store: PendingChangeStore
    signer: TokenSigner
    clock: Callable[[], float] = time.time
    new_token_id: Callable[[], str] = lambda: secrets.token_urlsafe(16)

    def preview(self, user_id: str, plan_key: str, quantity: int) -> dict[str, Any]:
        plan = require_plan(self.catalog(), plan_key, quantity)
        if plan.price_id is None:
            raise errors.InvalidRequest("this plan cannot be switched to here: use the billing portal")
        self.rate_limiter.admit(user_id)
        current = self._own_subscription(user_id)
        if current.price_id == plan.price_id and current.quantity == quantity:
            raise errors.InvalidRequest("that is already your plan")
        now = int(self.clock())
        proration_date = min(max(now, current.current_period_start), current.current_period_end - 1)
        items = [{"id": current.item_id, "price": plan.price_id, "quantity": quantity}]
        preview = self.gateway.preview(
            {
                "customer": current.customer_id,
                "subscription": current.id,
                "subscription_details": {
                    "items": items,
                    "proration_behavior": "always_invoice",
                    "proration_date": proration_date,
                },
            }
        )
        change = PendingChange(
            token_id=self.new_token_id(),
            user_id=user_id,
            subscription_id=current.id,
            item_id=current.item_id,
            plan_key=plan.key,
            price_id=plan.price_id,
            quantity=quantity,
            proration_date=proration_date,
            amount_due=preview.amount_due,
            currency=preview.currency,
            expires_at=now + TOKEN_TTL_SECONDS,
            from_price_id=current.price_id,
            from_quantity=current.quantity,
        )
        self.store.save(change)
        logger.info("plan change previewed", subscription_id=current.id, plan=plan.key)
        return {
            "token": self.signer.sign(change.token_id, user_id, change.expires_at),
            "expires_at": change.expires_at,
            "plan": plan.key,
            "quantity": quantity,
            "amount_due_now": preview.amount_due,
            "currency": preview.currency,
            "proration_date": proration_date,
            "next_invoice": {
                "date": current.current_period_end,
                "amount": (plan.unit_amount or 0) * quantity,
            },
        }

    def apply(self, user_id: str, token: str) -> dict[str, Any]:
        now = int(self.clock())
        token_id = self.signer.verify(token, user_id, now)
        change = self.store.consume(token_id, user_id, now)
        params = {
            "items": [{"id": change.item_id, "price": change.price_id, "quantity": change.quantity}],
            "proration_behavior": "always_invoice",
            "proration_date": change.proration_date,
            "metadata": {"plan": change.plan_key},
        }
        try:
            # The subscription must still be the caller's and hold what the proration was previewed from: after
            # another change (a second preview's token, the portal) the previewed amount would be wrong.
            current = self._own_subscription(user_id)
            if current.id != change.subscription_id or current.item_id != change.item_id:
                raise errors.Conflict("your subscription changed since the preview: preview again")
            holds = (current.price_id, current.quantity)
            if holds == (change.price_id, change.quantity):
                # Already in the target state (this token's earlier attempt whose answer was lost): charging
                # again is never right, and there is nothing left to change.
                logger.info("plan change already in effect", subscription_id=change.subscription_id)
            elif holds != (change.from_price_id, change.from_quantity):
                raise errors.Conflict("your subscription changed since the preview: preview again")
            else:
                self.gateway.apply(change.subscription_id, params, f"plan-change:{change.token_id}")
        except (errors.UpstreamUnavailable, errors.PersistenceUnavailable):
            # Transient: let the same token retry; its idempotency key makes the retry the same Stripe call.
            self.store.release(token_id)
            raise
        logger.info("plan changed", subscription_id=change.subscription_id, plan=change.plan_key)
        return {
            "plan": change.plan_key,
            "quantity": change.quantity,
            "amount_due_now": change.amount_due,
            "currency": change.currency,
        }

    def _own_subscription(self, user_id: str) -> SubscriptionView:
        customer_id = self.directory.customer_for_user(user_id)
        if customer_id is None:
            raise errors.NotFound("no billing account yet: start a checkout first")
        state = self.subscriptions.current_for_customer(customer_id)
        if state is None or state.kind != "subscription":
            raise errors.Conflict("no subscription to change")
        if not decide_access(state, int(self.clock()), self.access_policy).allowed:
            raise errors.Conflict("no active subscription to change")
        live = self.gateway.subscription(state.subscription_id)
        if live.customer_id != customer_id:
            # The cache and Stripe disagree about ownership: never act on someone else's subscription.
            logger.error("subscription owner mismatch", subscription_id=live.id)
            raise errors.Conflict("no subscription to change")
        return live
