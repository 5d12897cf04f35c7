"""Domain events from the table's stream to the bus: what a Lambda event source mapping feeds the publisher with.

Each batch is published in stream order (DomainEvent ids are stable, ``{stripe event id}:{name}``, so consumers
deduplicate on them; docs/domain-events.md). The relay answers with a partial batch response shaped for a stream
source, which retries from the first failed record: it stops at the first record it cannot publish and reports that
record and every later one, none of which it published, so a retry republishes only those. When the very first
record of a batch of several fails, the relay raises instead, and the event source mapping (BisectBatchOnFunctionError)
splits the batch until the record is alone; after the configured retries it goes to the on-failure destination while
its siblings were each published once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tollgate.domain.changes import ItemChange, events_from_change
from tollgate.domain.events import DomainEvent
from tollgate.errors import TollgateError
from tollgate.observability import MetricName, MetricUnit, logger
from tollgate.ports.messaging import DomainEventPublisher, MetricsSink


class BatchNeedsSplitting(Exception):
    """The first record of a batch of several could not be published: the event source mapping bisects the batch
    (a function error) so the record ends up alone, and its siblings are published."""


#: Domain events counted as business metrics when published (the dashboard's activations, cancellations and
#: payment failures; a re-published record counts again, so these are at-least-once counts).
BUSINESS_COUNTERS = {
    "subscription.activated": MetricName.SUBSCRIPTION_ACTIVATIONS,
    "subscription.canceled": MetricName.SUBSCRIPTION_CANCELLATIONS,
    "payment.failed": MetricName.PAYMENT_FAILURES,
}


@dataclass(frozen=True, slots=True)
class _Planned:
    sequence_number: str | None
    events: list[DomainEvent]


@dataclass
class DomainEventRelay:
    publisher: DomainEventPublisher
    #: Stream record -> item change; raises on a record it cannot read (the record is then poison).
    decode: Callable[[Mapping[str, Any]], ItemChange]
    #: Stream record -> its sequence number, when readable at all.
    sequence_of: Callable[[Mapping[str, Any]], str | None]
    metrics: MetricsSink | None = None

    def relay(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Publish the batch's domain events in order; returns the sequence numbers the stream must deliver again."""
        planned, unreadable = self._plan(records)
        failed_at = self._publish(planned)
        if unreadable is not None:
            failed_at = min(failed_at, unreadable)
        self._count_published(planned[:failed_at])
        if failed_at >= len(records):
            return []
        self._count(MetricName.DOMAIN_EVENT_RELAY_FAILURES, 1)
        if failed_at == 0 and len(records) > 1:
            raise BatchNeedsSplitting()
        retry = [self.sequence_of(r) for r in records[failed_at:]]
        if any(s is None for s in retry):
            raise BatchNeedsSplitting()  # a record without a sequence number cannot be reported: fail the batch
        return [s for s in retry if s is not None]

    def _plan(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[_Planned], int | None]:
        """Each readable record's events, up to the first record that cannot be read (its index, or None)."""
        planned: list[_Planned] = []
        for index, record in enumerate(records):
            try:
                change = self.decode(record)
                planned.append(_Planned(change.sequence_number, events_from_change(change.old, change.new)))
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                logger.error(
                    "stream record cannot be read",
                    sequence_number=self.sequence_of(record),
                    error_type=type(exc).__name__,
                )
                return planned, index
        return planned, None

    def _publish(self, planned: Sequence[_Planned]) -> int:
        """Publish in order, ``max_batch`` events per request; the index of the first record not fully published
        (``len(planned)`` when all were)."""
        entries = [(index, event) for index, plan in enumerate(planned) for event in plan.events]
        step = self.publisher.max_batch
        for start in range(0, len(entries), step):
            chunk = entries[start : start + step]
            try:
                refused = set(self.publisher.publish([event for _, event in chunk]))
            except TollgateError as exc:
                logger.warning("domain events not published", error_type=type(exc).__name__, events=len(chunk))
                return chunk[0][0]
            if refused:
                return min(index for index, event in chunk if event.id in refused)
        return len(planned)

    def _count_published(self, published: Sequence[_Planned]) -> None:
        events = [event for plan in published for event in plan.events]
        self._count(MetricName.DOMAIN_EVENTS_PUBLISHED, len(events))
        by_name = Counter(event.name for event in events)
        for event_name, metric in BUSINESS_COUNTERS.items():
            self._count(metric, by_name[event_name])

    def _count(self, name: str, value: int) -> None:
        if self.metrics is not None and value:
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
