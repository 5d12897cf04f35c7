"""What the product tells a signed-in user about their billing (``GET /billing/subscription``): the current
subscription from the projection and the access decision, with no Stripe call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollgate.domain.access import AccessDecision, AccessPolicy, decide_access
from tollgate.domain.subscriptions import SubscriptionState
from tollgate.ports.storage import CustomerLookup, SubscriptionRepository


def subscription_view(state: SubscriptionState | None, decision: AccessDecision) -> dict[str, Any]:
    """The response body both routes share. A user without a subscription gets ``status: none``, never a 404."""
    access = {"allowed": decision.allowed, "reason": decision.reason, "until": decision.until}
    if state is None:
        return {"status": "none", "plan": None, "access": access, "features": []}
    return {
        "status": state.status,
        "plan": state.plan_key,
        "price_id": state.price_id,
        "quantity": state.quantity,
        "subscription_id": state.subscription_id,
        "current_period_end": state.current_period_end,
        "cancel_at_period_end": state.cancel_at_period_end,
        "cancel_at": state.cancel_at,
        "trial_end": state.trial_end,
        "latest_invoice_status": state.latest_invoice_status,
        "access": access,
        "features": list(state.features),
    }


@dataclass
class BillingStatusService:
    repository: SubscriptionRepository
    directory: CustomerLookup
    policy: AccessPolicy
    clock: Callable[[], float] = time.time

    def for_customer(self, customer_id: str | None) -> dict[str, Any]:
        state = self.repository.current_for_customer(customer_id) if customer_id else None
        return subscription_view(state, decide_access(state, int(self.clock()), self.policy))

    def for_user(self, user_id: str) -> dict[str, Any]:
        return self.for_customer(self.directory.customer_for_user(user_id))

    def feature_for_user(self, user_id: str, feature: str) -> dict[str, Any]:
        """One feature check for the app's backends: on only while access is allowed and the customer's Stripe
        entitlements include it (the same decision ``for_user`` gives)."""
        view = self.for_user(user_id)
        enabled = bool(view["access"]["allowed"]) and feature in view["features"]
        return {"user_id": user_id, "feature": feature, "enabled": enabled, "access": view["access"]}
