"""What the product tells a signed-in user about their billing: ``GET /billing/subscription`` and the success
page's ``GET /checkout/sessions/{id}``.

The success-page check closes the redirect-versus-webhook race: it re-fetches the Checkout session from Stripe
(with its subscription expanded), checks the session belongs to the caller, and commits it with the webhook's own
projection and conditional repository. Whichever of the page and ``checkout.session.completed`` comes first
grants access; the other finds the same state (one grant, one ``subscription.activated``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tollgate import errors
from tollgate.access import AccessDecision, AccessPolicy, decide_access
from tollgate.customers import CustomerDirectory
from tollgate.observability import logger
from tollgate.subscriptions import projection
from tollgate.subscriptions.model import SubscriptionState, Watermark
from tollgate.subscriptions.repository import SubscriptionRepository
from tollgate.webhooks.handlers import Effects, HandlerContext, checkout_session_effects

if TYPE_CHECKING:
    from tollgate.bootstrap import Container


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
    directory: CustomerDirectory
    policy: AccessPolicy
    clock: Callable[[], float] = time.time

    @classmethod
    def from_container(cls, c: Container) -> BillingStatusService:
        from tollgate.subscriptions.repository import DynamoSubscriptionRepository

        policy = AccessPolicy.from_settings(c.settings)
        return cls(
            DynamoSubscriptionRepository(c.dynamodb, c.settings.table_name, access_policy=policy),
            c.customer_directory,
            policy,
        )

    def for_customer(self, customer_id: str | None) -> dict[str, Any]:
        state = self.repository.current_for_customer(customer_id) if customer_id else None
        return subscription_view(state, decide_access(state, int(self.clock()), self.policy))

    def for_user(self, user_id: str) -> dict[str, Any]:
        return self.for_customer(self.directory.customer_for_user(user_id))


class EffectsApplier(Protocol):
    def apply_effects(self, effects: Effects, *, publish_by: float | None = None) -> int: ...


def page_watermark(session: Mapping[str, Any]) -> Watermark:
    """A fetched state's order, on Stripe's clock (never ours: a skewed local clock could outrank later events).

    The latest Stripe timestamp the fetched objects carry is a lower bound of the fetch time; rank FETCHED lets a
    webhook fetch of the same second replace it and keeps an older snapshot from doing so."""
    stamps = [projection.int_or_none(session.get("created"))]
    sub = session.get("subscription")
    if isinstance(sub, Mapping):
        stamps += [projection.int_or_none(sub.get("created")), projection.int_or_none(sub.get("start_date"))]
        for item in ((sub.get("items") or {}).get("data")) or []:
            if isinstance(item, Mapping):
                stamps.append(projection.int_or_none(item.get("current_period_start")))
    created = max((s for s in stamps if s is not None), default=0)
    return Watermark(created, Watermark.FETCHED, f"page_{session.get('id')}")


@dataclass
class SuccessPageCheck:
    context: HandlerContext
    directory: CustomerDirectory
    applier: EffectsApplier
    status: BillingStatusService

    @classmethod
    def from_container(cls, c: Container) -> SuccessPageCheck:
        from tollgate.webhooks.wiring import webhook_service

        service = webhook_service(c)
        return cls(service.context, service.directory, service, BillingStatusService.from_container(c))

    def check(self, user_id: str, session_id: str) -> dict[str, Any]:
        try:
            session = self.context.reader.checkout_session(session_id)
        except errors.UpstreamNotFound:
            raise errors.NotFound() from None
        customer_id = _id_of(session.get("customer"))
        if not self._belongs_to(user_id, session, customer_id):
            # Someone else's session looks exactly like a missing one: no data, no existence oracle.
            logger.warning("checkout session of another user requested", outcome="not_found")
            raise errors.NotFound()
        if session.get("status") == "complete" and customer_id is not None:
            effects = checkout_session_effects(session, self.context, page_watermark(session))
            # A reload finds its own write committed and its outbox entry gone: nothing is announced twice.
            self.applier.apply_effects(effects)
        return {
            "session_id": session.get("id"),
            "session_status": session.get("status"),
            "payment_status": session.get("payment_status"),
            **(self.status.for_customer(customer_id) if customer_id else self.status.for_user(user_id)),
        }

    def _belongs_to(self, user_id: str, session: Mapping[str, Any], customer_id: str | None) -> bool:
        metadata = session.get("metadata") or {}
        named = {_id_of(metadata.get("app_user_id")), _id_of(session.get("client_reference_id"))} - {None}
        if named != {user_id}:
            return False
        if customer_id is None:
            return True  # not paid yet: nothing to project, and nothing of the customer is shown
        mapped_customer = self.directory.customer_for_user(user_id)
        if mapped_customer is not None and mapped_customer != customer_id:
            return False
        mapped_user = self.directory.user_for_customer(customer_id)
        return mapped_user is None or mapped_user == user_id


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
