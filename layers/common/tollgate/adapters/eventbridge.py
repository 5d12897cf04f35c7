"""Publishing domain events: on the product's EventBridge bus, or only to the log when no bus is configured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tollgate.adapters.aws import aws_errors
from tollgate.domain.events import SOURCE, DomainEvent
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class EventBridgePublisher:
    """PutEvents on the billing bus, one request per batch; the entries it refused come back by event id."""

    max_batch = 10

    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> list[str]:
        if len(events) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} events per request")
        if not events:
            return []
        with aws_errors("events.put"):
            answer = self._client.put_events(
                Entries=[
                    {"EventBusName": self._bus, "Source": SOURCE, "DetailType": e.name, "Detail": e.detail()}
                    for e in events
                ]
            )
        # Entries answer in request order; a refused one carries an ErrorCode instead of an EventId.
        refused = [e.id for e, entry in zip(events, answer.get("Entries", []), strict=False) if entry.get("ErrorCode")]
        if answer.get("FailedEntryCount", 0) and not refused:
            refused = [e.id for e in events]  # counted but not attributed: none is known to be published
        if refused:
            logger.warning("domain events not accepted", failed=len(refused))
        return refused


class LogOnlyPublisher:
    """Used when no bus is configured (EVENT_BUS_NAME empty): events are logged by name only."""

    max_batch = 10

    def publish(self, events: Sequence[DomainEvent]) -> list[str]:
        for e in events:
            logger.info("domain event (no bus configured)", event_name=e.name, event_id=e.id)
        return []
