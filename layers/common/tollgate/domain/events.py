"""Normalized billing events the product publishes on its EventBridge bus (schemas: docs/domain-events.md).

Consumers (emails, provisioning) react to these without touching Stripe. Each id is derived from the Stripe event
that caused it, so a re-publication after a crash carries the same id and consumers can deduplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

SOURCE = "tollgate.billing"
SCHEMA_VERSION = 1
_ACTIVE = frozenset({"active", "trialing"})


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    occurred_at: int
    customer_id: str | None = None
    subscription_id: str | None = None
    user_id: str | None = None
    stripe_event_id: str
    data: dict[str, Any] = {}

    def detail(self) -> str:
        return json.dumps({"schema_version": SCHEMA_VERSION, **self.model_dump()}, separators=(",", ":"))


def domain_event(name: str, stripe_event_id: str, occurred_at: int, **fields: Any) -> DomainEvent:
    return DomainEvent(
        id=f"{stripe_event_id}:{name}", name=name, stripe_event_id=stripe_event_id, occurred_at=occurred_at, **fields
    )


def subscription_transition(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:  # noqa: PLR0911
    """The one domain event name for a change of a projected subscription, or None if nothing notable changed."""
    before, after = old.get("status"), new.get("status")
    if new.get("gone") and not old.get("gone"):
        return "subscription.canceled" if before != "canceled" else None
    if before == after:
        if bool(new.get("cancel_at_period_end")) != bool(old.get("cancel_at_period_end")):
            return "subscription.cancellation_scheduled" if new.get("cancel_at_period_end") else "subscription.renewed"
        if (new.get("price_id"), new.get("quantity")) != (old.get("price_id"), old.get("quantity")) and before:
            return "subscription.plan_changed"
        return None
    if after in _ACTIVE:
        if before in _ACTIVE:
            return "subscription.trial_converted" if before == "trialing" else None
        return "subscription.resumed" if before == "paused" else "subscription.activated"
    names = {
        "canceled": "subscription.canceled",
        "past_due": "subscription.past_due",
        "unpaid": "subscription.unpaid",
        "paused": "subscription.paused",
        "incomplete_expired": "subscription.expired",
        "incomplete": "subscription.incomplete",
    }
    return names.get(str(after))


def transition_event(  # noqa: PLR0917 - the facts of one transition, named where they are built
    event_id: str,
    created: int,
    customer_id: str,
    subscription_id: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> DomainEvent | None:
    """The domain event a subscription write announces, judged on its state before and after (None: nothing
    notable changed)."""
    name = subscription_transition(before, after)
    if name is None:
        return None
    return domain_event(
        name,
        event_id,
        created,
        customer_id=customer_id,
        subscription_id=subscription_id,
        data={"status": after.get("status"), "previous_status": before.get("status")},
    )
