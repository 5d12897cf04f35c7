"""The one subscription write pipeline: a handler's effects -> conditional writes -> transitions -> domain events.

The webhook (under the event ledger's lease, or with the one-write commit), reconcile and the success-page check
all commit through ``SubscriptionWriter``: each write is watermark-conditional, each subscription write carries its
transition in the item's outbox (tollgate.domain.outbox), and the transitions and announcements are published
after the commit, then the outbox entries are settled. A retry or a page reload re-publishes only what is still
pending there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tollgate import errors
from tollgate.domain.effects import Effects
from tollgate.domain.events import DomainEvent, transition_event
from tollgate.domain.outbox import MAX_SETTLED_ENTRIES, entries_in, pending_in, transition_fields
from tollgate.domain.subscriptions import (
    SUBSCRIPTION_RECORD_PREFIX,
    WATERMARK_ATTRIBUTE,
    StateWrite,
    Watermark,
    WriteOutcome,
    WriteResult,
)
from tollgate.observability import MetricUnit, logger, metrics
from tollgate.ports.messaging import DomainEventPublisher
from tollgate.ports.storage import CustomerDirectory, MeterErrorLog, SubscriptionRepository


@dataclass
class SubscriptionWriter:
    repository: SubscriptionRepository
    directory: CustomerDirectory
    publisher: DomainEventPublisher
    meter_errors: MeterErrorLog
    clock: Callable[[], float] = time.time
    #: How long after a commit its attempt may still be publishing (at least the function's timeout).
    implicit_lease_seconds: int = 30

    def apply_effects(self, effects: Effects, *, publish_by: float | None = None) -> int:
        """Commit effects through the watermark-conditional repository, then publish; returns the state changes.
        Each write's watermark names the event (or page) it comes from, which is also its outbox entry's id.

        ``publish_by``: when the committing attempt ends (the webhook's lease); None: ``implicit_lease_seconds``
        from now (the success-page check, reconcile)."""
        until = int(publish_by if publish_by is not None else self.clock() + self.implicit_lease_seconds)
        if effects.link is not None:
            self.link(*effects.link)
        if effects.owner is not None:
            # Before the state write: once that commits, the subscription can always be found again.
            self.repository.remember_owner(*effects.owner)
        drain = OutboxDrain()
        for write in effects.writes:
            result = self.repository.write_if_newer(write, publish_by=until)
            if result.outcome is WriteOutcome.TIE and effects.refetch is not None:
                metrics.add_metric(name="WebhookFetchLatest", unit=MetricUnit.Count, value=1)
                for fetched in effects.refetch():
                    drain.add(fetched, self.repository.write_if_newer(fetched, publish_by=until), self.clock())
                continue
            drain.add(write, result, self.clock())
        if effects.customer_deleted:
            self.directory.mark_deleted(effects.customer_deleted)
        if effects.meter_error is not None:
            metrics.add_metric(name="MeterErrorReports", unit=MetricUnit.Count, value=1)
            self.meter_errors.record(effects.meter_error)
        # A live attempt holding one of our entries (a page reload racing the first load) publishes it itself.
        self.publish(list(effects.announcements) + drain.outgoing)
        self.settle(drain)
        return drain.changes

    def link(self, user_id: str, customer_id: str) -> None:
        try:
            self.directory.link(user_id, customer_id)
        except errors.Conflict:
            # Permanent: retrying would never succeed. Count it and carry on with the projection.
            metrics.add_metric(name="WebhookLinkConflict", unit=MetricUnit.Count, value=1)
            logger.warning("customer already linked to another user", customer_id=customer_id)

    def publish(self, outgoing: list[DomainEvent]) -> None:
        if outgoing:
            self.publisher.publish(outgoing)

    def settle(self, drain: OutboxDrain) -> None:
        """Settle what was just published (and remove old settled entries). The announcements are out already: a
        failure here only leaves entries that a later write re-publishes (same ids) and settles, so it is logged,
        not raised."""
        for (customer_id, sort_key), (settle, remove) in drain.settlements().items():
            try:
                self.repository.clear_outbox(customer_id, sort_key, settle=settle, remove=remove)
            except errors.TollgateError:
                metrics.add_metric(name="OutboxClearFailed", unit=MetricUnit.Count, value=1)
                logger.warning("outbox entries not removed; a later write re-publishes them")


@dataclass
class OutboxDrain:
    """What some state writes leave to publish, and how to settle the items' outbox entries afterwards.

    Per write: the item's pending entries (published when their attempt has ended: the event's own retry, or a
    later event of the subscription taking over a crashed one; left alone while a live attempt holds them), then
    its own transition if it applied (judged against the item as it was, returned by the write). Entries of the
    item's current second are kept settled; older settled ones are removed (tollgate.domain.outbox)."""

    outgoing: list[DomainEvent] = field(default_factory=list)
    changes: int = 0
    #: Our own entry is held by an attempt still within its time (a concurrent duplicate).
    own_in_flight: bool = False
    _published: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    _settled: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    _second: dict[tuple[str, str], int] = field(default_factory=dict)
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, write: StateWrite, result: WriteResult, now: float) -> None:
        if result.outcome is WriteOutcome.APPLIED:
            self.changes += 1
        if write.aspect != "subscription":
            return
        item = (write.customer_id, write.sort_key)
        own_id = write.watermark.event_id
        applied = result.outcome is WriteOutcome.APPLIED
        self._second[item] = write.watermark.created if applied else _stored_second(result.previous)
        pending = {p.event_id: p for p in pending_in(result.previous)}
        # Older changes first: every entry found was written before this write.
        for event_id, created in sorted(entries_in(result.previous).items(), key=lambda e: (e[1], e[0])):
            if (*item, event_id) in self._seen or (applied and event_id == own_id):
                continue  # already taken, or overwritten by this very write's entry
            entry = pending.get(event_id)
            announcement = entry.announcement() if entry else None
            if entry is not None and announcement is not None and not entry.abandoned(now):
                self.own_in_flight |= event_id == own_id
                continue  # its attempt is live and publishes it
            self._seen.add((*item, event_id))
            self._take(item, event_id, created, announcement)
        if applied:
            self._seen.add((*item, own_id))
            own = transition_event(
                own_id,
                write.watermark.created,
                write.customer_id,
                write.sort_key.removeprefix(SUBSCRIPTION_RECORD_PREFIX),
                transition_fields(result.previous),
                write.fields,
            )
            self._take(item, own_id, write.watermark.created, own)

    def _take(self, item: tuple[str, str], event_id: str, created: int, announcement: DomainEvent | None) -> None:
        if announcement is None:
            self._settled.setdefault(item, {})[event_id] = created
        else:
            self.outgoing.append(announcement)
            self._published.setdefault(item, {})[event_id] = created

    def settlements(self) -> dict[tuple[str, str], tuple[dict[str, int], list[str]]]:
        """Per item, (entries to keep settled, entries to remove): after a publication always; for settled
        entries alone only once ``MAX_SETTLED_ENTRIES`` of earlier seconds have piled up."""
        out: dict[tuple[str, str], tuple[dict[str, int], list[str]]] = {}
        for item in self._published.keys() | self._settled.keys():
            second = self._second[item]
            published, settled = self._published.get(item, {}), self._settled.get(item, {})
            old = sorted(e for e, created in {**settled, **published}.items() if created < second)
            if not published and len(old) < MAX_SETTLED_ENTRIES:
                continue
            current = {e: created for e, created in {**settled, **published}.items() if created >= second}
            out[item] = (current, old)
        return out


def _stored_second(item: Mapping[str, Any]) -> int:
    raw = item.get(WATERMARK_ATTRIBUTE["subscription"])
    return Watermark.decode(raw).created if isinstance(raw, str) else 0
