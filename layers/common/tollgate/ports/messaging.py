"""What the product hands to queues, buses and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tollgate.domain.events import DomainEvent


class DomainEventPublisher(Protocol):
    #: Events per ``publish`` call (EventBridge's PutEvents limit).
    max_batch: int

    def publish(self, events: Sequence[DomainEvent]) -> list[str]:
        """Publish up to ``max_batch`` events; returns the ids of those the bus did not accept. Raises
        (PersistenceUnavailable) when the bus could not be reached: none of them is known to be published."""
        ...


@dataclass(frozen=True, slots=True)
class ParkedRecord:
    """A usage record that can never be billed as it stands, with its reason (see the glossary: *park*)."""

    message_id: str
    body: str
    reason: str
    usage_id: str | None


class Parking(Protocol):
    def park(self, records: Sequence[ParkedRecord]) -> list[str]:
        """Keep ``records`` with their reasons; returns the message ids that could not be parked."""
        ...


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...
