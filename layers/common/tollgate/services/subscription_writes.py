"""The one subscription write pipeline: a handler's effects -> watermark-conditional writes (and the customer
link, deletions, meter errors that come with them).

The webhook's leased path, reconcile and the success-page check commit through ``SubscriptionWriter``; the
webhook's one-write path uses its ``write`` and ``link`` directly. Nothing here publishes: every applied write is a
change on the table's stream, and the domain-event relay (tollgate.services.domain_event_relay) derives the
transitions and announcements from it, so a crash after a commit loses no event and a retry repeats none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tollgate import errors
from tollgate.domain.effects import Effects
from tollgate.domain.events import DomainEvent
from tollgate.domain.subscriptions import APPLIED_EVENTS_ATTRIBUTE, StateWrite, WriteOutcome, WriteResult
from tollgate.observability import MetricName, MetricUnit, logger, metrics
from tollgate.ports.storage import CustomerDirectory, MeterErrorLog, SubscriptionRepository

#: Outcomes after which the event's state (and what its write carried) is in the table.
COMMITTED = frozenset({WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED})


@dataclass(frozen=True, slots=True)
class Committed:
    """What one write came to, after a tie was settled by fetching the object."""

    result: WriteResult
    #: Whether the write's announcements are in the table (it applied, or an earlier attempt's did).
    carried: bool


@dataclass
class SubscriptionWriter:
    repository: SubscriptionRepository
    directory: CustomerDirectory
    meter_errors: MeterErrorLog

    def apply_effects(self, effects: Effects) -> int:
        """Commit the effects' state writes (settling same-second ties by fetch-latest), then the link, the
        deletion and the meter error they name; returns the number of state changes."""
        if effects.link is not None:
            self.link(*effects.link)
        if effects.owner is not None:
            # Before the state write: once that commits, the subscription can always be found again.
            self.repository.remember_owner(*effects.owner)
        changes = 0
        for write in effects.writes:
            committed = self.write(write, effects)
            changes += committed.result.outcome is WriteOutcome.APPLIED
        if effects.customer_deleted:
            self.directory.mark_deleted(effects.customer_deleted)
        if effects.meter_error is not None:
            metrics.add_metric(name=MetricName.METER_ERROR_REPORTS, unit=MetricUnit.Count, value=1)
            self.meter_errors.record(effects.meter_error)
        return changes

    def write(self, write: StateWrite, effects: Effects, announcements: Sequence[DomainEvent] = ()) -> Committed:
        """One watermark-conditional write carrying ``announcements``. A snapshot that ties with another event's
        state of the same second is either this event's redelivery (it is among that second's applied events) or
        of unknown order: then the object is fetched from Stripe and written as fetched."""
        carrying = replace(write, announcements=tuple(announcements)) if announcements else write
        result = self.repository.write_if_newer(carrying)
        if result.outcome is WriteOutcome.TIE:
            if write.watermark.event_id in applied_in_second(result.previous):
                # Applied already, then a later event of the same second committed over it: a redelivery.
                return Committed(WriteResult(WriteOutcome.ALREADY_APPLIED, result.previous), carried=True)
            if effects.refetch is not None:
                metrics.add_metric(name=MetricName.WEBHOOK_FETCH_LATEST, unit=MetricUnit.Count, value=1)
                fetched = effects.refetch()
                for index, rewrite in enumerate(fetched):
                    carried = tuple(announcements) if index == 0 else ()
                    # A fetch ordered at a later second (Stripe moved on) starts that second's run of applied events.
                    same_second = rewrite.watermark.created == write.watermark.created
                    outcome = self.repository.write_if_newer(
                        replace(rewrite, announcements=carried), after_tie=same_second
                    )
                    if index == 0:
                        result = outcome
        return Committed(result, carried=bool(announcements) and result.outcome in COMMITTED)

    def link(self, user_id: str, customer_id: str) -> None:
        """Every link the effects carry comes from a subscription (its metadata, its Checkout Session), so it also
        records that the user had one."""
        try:
            self.directory.link(user_id, customer_id, subscribed=True)
        except errors.Conflict:
            # Permanent: retrying would never succeed. Count it and carry on with the projection.
            metrics.add_metric(name=MetricName.WEBHOOK_LINK_CONFLICT, unit=MetricUnit.Count, value=1)
            logger.warning("customer already linked to another user", customer_id=customer_id)


def applied_in_second(item: Mapping[str, object]) -> list[str]:
    """The events the item's current run of same-second writes applied (a snapshot write starts the run, a fetch
    after a tie extends it)."""
    stored = item.get(APPLIED_EVENTS_ATTRIBUTE)
    return [str(e) for e in stored] if isinstance(stored, list) else []
