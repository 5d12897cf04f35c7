"""The success page's ``GET /checkout/sessions/{id}``: closes the redirect-versus-webhook race.

It re-fetches the Checkout session from Stripe (with its subscription expanded), checks the session belongs to the
caller, and commits it through the subscription write pipeline with the webhook's own projection. Whichever of the
page and ``checkout.session.completed`` comes first grants access; the other finds the same state (one grant, one
``subscription.activated``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain import projection
from tollgate.domain.subscriptions import Watermark
from tollgate.observability import logger
from tollgate.ports.storage import CustomerDirectory, RateLimiter
from tollgate.services.billing_status import BillingStatusService
from tollgate.services.subscription_writes import SubscriptionWriter
from tollgate.services.webhook_handlers import HandlerContext, checkout_session_effects


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


#: Stripe's Checkout Session ids: anything else can never exist, so it never costs a Stripe call.
CHECKOUT_SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{1,200}$")


@dataclass
class SuccessPageCheck:
    context: HandlerContext
    directory: CustomerDirectory
    writer: SubscriptionWriter
    status: BillingStatusService
    #: Each check may fetch the session from Stripe: limited per user, so polling (or guessing ids) cannot spend the
    #: account's Stripe rate. None: no limit (tests of the race itself).
    rate_limiter: RateLimiter | None = None

    def check(self, user_id: str, session_id: str) -> dict[str, Any]:
        if not CHECKOUT_SESSION_ID.fullmatch(session_id):
            raise errors.InvalidRequest("invalid checkout session id")
        if self.rate_limiter is not None:
            self.rate_limiter.admit(user_id)
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
            # A reload finds its own write committed (ALREADY_APPLIED): no second change, so nothing announced twice.
            self.writer.apply_effects(effects)
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
