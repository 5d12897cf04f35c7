"""Normalized billing events the product publishes on its EventBridge bus (schemas: docs/domain-events.md).

Consumers (emails, provisioning) react to these without touching Stripe. Each id is derived from the Stripe event
that caused it, so a re-publication after a crash carries the same id and consumers can deduplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from tollgate import errors
from tollgate.adapters.aws import aws_errors
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

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


class DomainEventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None: ...


class EventBridgePublisher:
    """PutEvents on the billing bus; a partial failure raises so the webhook answers 5xx and Stripe retries."""

    MAX_BATCH = 10

    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for start in range(0, len(events), self.MAX_BATCH):
            batch = events[start : start + self.MAX_BATCH]
            with aws_errors("events.put"):
                answer = self._client.put_events(
                    Entries=[
                        {"EventBusName": self._bus, "Source": SOURCE, "DetailType": e.name, "Detail": e.detail()}
                        for e in batch
                    ]
                )
            if answer.get("FailedEntryCount", 0):
                logger.warning("domain events not accepted", failed=answer["FailedEntryCount"])
                raise errors.PersistenceUnavailable("event bus did not accept every event")


class NullPublisher:
    """Used when no bus is configured (EVENT_BUS_NAME empty): events are logged by name only."""

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for e in events:
            logger.info("domain event (no bus configured)", event_name=e.name, event_id=e.id)
