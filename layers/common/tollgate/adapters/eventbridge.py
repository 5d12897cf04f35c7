"""Publishing domain events: on the product's EventBridge bus, or only to the log when no bus is configured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tollgate import errors
from tollgate.adapters.aws import aws_errors
from tollgate.domain.events import SOURCE, DomainEvent
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


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


class LogOnlyPublisher:
    """Used when no bus is configured (EVENT_BUS_NAME empty): events are logged by name only."""

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for e in events:
            logger.info("domain event (no bus configured)", event_name=e.name, event_id=e.id)
