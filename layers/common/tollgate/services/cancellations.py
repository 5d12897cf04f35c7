"""Cancel at period end and resume for the signed-in user (``POST /billing/subscription/cancel`` and ``/resume``).

Only the caller's own current subscription (from their mapping and the projection, never from the request), read
live from Stripe before the update so a repeated or crossing request does nothing twice. The update carries a
deterministic idempotency key (the client's ``Idempotency-Key``, else the first-seen window of this request); the
projection changes only through the webhook Stripe then sends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain.cancellation import CancellationChange, cancellation_update
from tollgate.domain.customers import NO_BILLING_ACCOUNT
from tollgate.observability import logger
from tollgate.ports.storage import CustomerDirectory, RateLimiter, RequestWindows, SubscriptionRepository
from tollgate.ports.stripe import CancellationGateway
from tollgate.services.idempotency import check_client_key, scoped_idempotency_key

#: Without an Idempotency-Key, repeats of the same request within this long share one Stripe key.
DERIVED_KEY_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class CancellationService:
    directory: CustomerDirectory
    subscriptions: SubscriptionRepository
    gateway: CancellationGateway
    rate_limiter: RateLimiter
    windows: RequestWindows
    clock: Callable[[], float] = time.time

    def cancel(self, user_id: str, client_key: str | None) -> dict[str, Any]:
        return self._change(user_id, "cancel", client_key)

    def resume(self, user_id: str, client_key: str | None) -> dict[str, Any]:
        return self._change(user_id, "resume", client_key)

    def _change(self, user_id: str, change: CancellationChange, client_key: str | None) -> dict[str, Any]:
        check_client_key(client_key)
        self.rate_limiter.admit(user_id)
        customer_id = self.directory.customer_for_user(user_id)
        if customer_id is None:
            raise errors.NotFound(NO_BILLING_ACCOUNT)
        state = self.subscriptions.current_for_customer(customer_id)
        if state is None or state.gone or state.status in ("canceled", "incomplete_expired"):
            raise errors.Conflict("no subscription to change")
        if state.kind != "subscription":
            raise errors.Conflict("this subscription is managed in the billing portal")
        try:
            live = self.gateway.subscription(state.subscription_id)
        except errors.UpstreamNotFound:
            raise errors.Conflict("no subscription to change") from None
        if live.customer_id != customer_id:  # the projection and Stripe disagree on the owner: refuse
            logger.error("subscription owner mismatch", subscription_id=live.id)
            raise errors.Conflict("no subscription to change")
        now = int(self.clock())
        params = cancellation_update(live, change, now)
        if params is not None:
            key = scoped_idempotency_key(
                f"subscription-{change}",
                user_id,
                client_key,
                (live.id,),
                windows=self.windows,
                now=now,
                window=DERIVED_KEY_WINDOW_SECONDS,
            )
            self.gateway.update(live.id, params, key)
        logger.info(
            "subscription cancellation changed", subscription_id=live.id, change=change, sent=params is not None
        )
        return {
            "subscription_id": live.id,
            "cancel_at_period_end": change == "cancel",
            "current_period_end": live.current_period_end,
            "cancel_at": live.cancel_at if change == "cancel" else None,
            "status": live.status,
            # True: Stripe was asked now; the subscription's state follows by its webhook.
            "changed": params is not None,
        }
