"""The webhook use case: size cap -> signature -> parse -> dispatch lookup -> claim -> apply -> publish -> complete.

No 2xx is returned before the event's state is committed: a duplicate of a completed event gets 2xx with no
writes, a duplicate of an event another worker holds waits briefly for it and otherwise gets 409 (Stripe retries).
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tollgate import errors
from tollgate.customers import CustomerDirectory
from tollgate.domain_events import DomainEvent, DomainEventPublisher
from tollgate.observability import MetricUnit, logger, metrics
from tollgate.subscriptions.model import Watermark
from tollgate.subscriptions.outbox import GARBAGE_LIMIT, entries_in, pending_in, tracked, transition_event
from tollgate.subscriptions.repository import (
    WATERMARK_ATTRIBUTE,
    StateWrite,
    SubscriptionRepository,
    WriteOutcome,
    WriteResult,
)
from tollgate.webhooks.envelope import SnapshotEvent, StripeEvent, parse_event
from tollgate.webhooks.handlers import FETCHING_HANDLERS, Effects, HandlerContext, MeterErrorReport, handler_for
from tollgate.webhooks.ledger import ClaimStatus, EventLedger
from tollgate.webhooks.verification import SignatureRejected, verify_signature

#: Leave this much of the invocation for answering after the lease would lapse.
LEASE_SAFETY_MS = 500


class MeterErrorLog(Protocol):
    def record(self, report: MeterErrorReport) -> None: ...


class CustomerDeletions(Protocol):
    def mark_deleted(self, customer_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    signature: str | None
    remaining_ms: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """A 2xx answer; failures raise tollgate errors mapped to HTTP in one place."""

    result: str
    event_id: str | None = None
    state_changes: int = 0


@dataclass
class WebhookService:
    signing_secrets: Callable[[], Sequence[str]]
    ledger: EventLedger
    repository: SubscriptionRepository
    directory: CustomerDirectory
    publisher: DomainEventPublisher
    context: HandlerContext
    meter_errors: MeterErrorLog
    deletions: CustomerDeletions
    tolerance_seconds: int = 300
    max_body_bytes: int = 262_144
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    in_progress_wait_seconds: float = 1.0
    #: Snapshot events with one state write commit in that write (see _process_one_write); False: always lease.
    one_write_path: bool = True
    #: How long after a commit its attempt may still be publishing (at least the function's timeout).
    implicit_lease_seconds: int = 30
    #: The mode of the configured API key (True: live); None accepts both. Read after verification.
    expected_livemode: Callable[[], bool | None] = lambda: None

    def receive(self, delivery: Delivery) -> Outcome:
        # The invocation ends at a fixed time: everything spent before the claim (secrets, a tie) shortens the lease.
        ends_at = self.clock() + delivery.remaining_ms / 1000
        if len(delivery.body) > self.max_body_bytes:
            metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
            raise errors.PayloadTooLarge()
        # A blank entry (an empty placeholder in the secret) is no secret: an HMAC under it is forgeable by anyone.
        secrets = [s for s in self.signing_secrets() if s.strip()]
        if not secrets:
            raise errors.ConfigurationError("no webhook signing secret configured")  # fail closed: 5xx
        try:
            verify_signature(delivery.body, delivery.signature, secrets, self.tolerance_seconds, int(self.clock()))
        except SignatureRejected as rejected:
            metrics.add_metric(name="WebhookSignatureFailed", unit=MetricUnit.Count, value=1)
            logger.warning("webhook signature rejected", reason=rejected.reason)
            raise errors.InvalidRequest() from None
        event = parse_event(delivery.body)
        expected = self.expected_livemode()
        if expected is not None and event.livemode != expected:
            metrics.add_metric(name="WebhookWrongMode", unit=MetricUnit.Count, value=1)
            logger.warning("event from the other mode ignored", event_id=event.id)
            return Outcome("ignored_mode", event.id)
        handler = handler_for(event)
        if handler is None:
            metrics.add_metric(name="WebhookUnhandledType", unit=MetricUnit.Count, value=1)
            logger.info("event type not handled", event_id=event.id, event_type=event.type)
            return Outcome("unhandled_type", event.id)
        one_write = self.one_write_path and handler not in FETCHING_HANDLERS and isinstance(event, SnapshotEvent)
        try:
            return self._dispatch(event, _refusing_unprocessable(handler), ends_at, one_write)
        except Unprocessable:
            # Signed by Stripe but not something we can ever apply (e.g. an object without its customer): a non-2xx
            # would only make Stripe retry it for 3 days. Acknowledge, count, log the ids; nothing was written.
            metrics.add_metric(name="WebhookUnprocessable", unit=MetricUnit.Count, value=1)
            logger.warning("signed event cannot be applied", event_id=event.id, event_type=event.type)
            return Outcome("unprocessable", event.id)

    def _dispatch(
        self, event: StripeEvent, handler: Callable[[Any, HandlerContext], Effects], ends_at: float, one_write: bool
    ) -> Outcome:
        if one_write and isinstance(event, SnapshotEvent):
            effects = handler(event, self.context)
            if len(effects.writes) == 1 and effects.customer_deleted is None and effects.meter_error is None:
                outcome = self._process_one_write(event, effects, ends_at)
                if outcome is not None:
                    return outcome
        return self._process_once(event, handler, ends_at)

    def _process_one_write(self, event: SnapshotEvent, effects: Effects, ends_at: float) -> Outcome | None:
        """A snapshot event with one state write: that conditional write IS the commit (1 DynamoDB call).

        The write carries the event id in its watermark, so a redelivery finds it (ALREADY_APPLIED) or a newer
        state (STALE) and writes nothing. A subscription transition rides in the same write as an outbox entry
        (tollgate.subscriptions.outbox), removed once published; a redelivery that finds its own entry still held
        by a live attempt waits (409 if it stays). Handler announcements (``payment.failed``...) are re-derived on
        every delivery, so the ledger records that they went out. A same-second tie needs a fetch: the leased path
        takes over (returns None)."""
        (write,) = effects.writes
        result = self.repository.write_if_newer(write, publish_by=int(ends_at))
        if result.outcome is WriteOutcome.TIE:
            if write.watermark.event_id not in entries_in(result.previous):
                return None
            # Our entry is there: this event was applied, then a later one of the same second committed. A
            # redelivery, not an unknown order: fetching and writing the object again would apply it twice.
            result = WriteResult(WriteOutcome.ALREADY_APPLIED, result.previous)
        drain = OutboxDrain()
        drain.add(write, result, self.clock())
        if effects.link is not None and result.outcome in (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED):
            self._link(*effects.link)
        if drain.own_in_flight:
            # The attempt that committed this very write is still within its time: it is publishing.
            self._await_outbox(write, event.id)
            metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
            return Outcome("duplicate", event.id)
        announcements = list(effects.announcements)
        if announcements and result.outcome is not WriteOutcome.APPLIED:
            announcements = self._unpublished(event.id, result, announcements)
        self._publish(announcements + drain.outgoing)
        self._clear(drain)
        if announcements:
            self.ledger.mark_completed(event.id, event.type)
        if result.outcome is WriteOutcome.APPLIED:
            metrics.add_metric(name="WebhookApplied", unit=MetricUnit.Count, value=1)
            logger.info("event applied", event_id=event.id, event_type=event.type, state_changes=drain.changes)
            return Outcome("applied", event.id, drain.changes)
        metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
        return Outcome("duplicate" if result.outcome is WriteOutcome.ALREADY_APPLIED else "stale", event.id)

    def _unpublished(self, event_id: str, result: WriteResult, announcements: list[DomainEvent]) -> list[DomainEvent]:
        """A redelivery's handler announcements, unless the ledger says an earlier attempt published them. If the
        write is our own and fresh, its attempt may still be publishing: wait briefly, then let Stripe retry."""
        if self.ledger.status(event_id) is ClaimStatus.COMPLETED:
            return []
        committed_at = result.previous.get("updated_at")
        if (
            result.outcome is WriteOutcome.ALREADY_APPLIED
            and isinstance(committed_at, int)
            and self.clock() < committed_at + self.implicit_lease_seconds
        ):
            deadline = self.clock() + self.in_progress_wait_seconds
            while self.ledger.status(event_id) is not ClaimStatus.COMPLETED:
                if self.clock() >= deadline:
                    raise errors.Conflict("event is being processed")
                self.sleep(0.05)
            return []
        return announcements

    def _await_outbox(self, write: StateWrite, event_id: str) -> None:
        deadline = self.clock() + self.in_progress_wait_seconds
        while self.repository.outbox_pending(write.customer_id, write.sort_key, event_id):
            if self.clock() >= deadline:
                logger.info("event's announcements in progress elsewhere", event_id=event_id)
                raise errors.Conflict("event is being processed")
            self.sleep(0.05)

    def _publish(self, outgoing: list[DomainEvent]) -> None:
        if outgoing:
            self.publisher.publish(outgoing)

    def _clear(self, drain: OutboxDrain) -> None:
        """Remove what was just published (and garbage). The announcements are out already: a failure here only
        leaves entries that a later write re-publishes (same ids) and removes, so it is logged, not raised."""
        for (customer_id, sort_key), (settle, remove) in drain.settlements().items():
            try:
                self.repository.clear_outbox(customer_id, sort_key, settle=settle, remove=remove)
            except errors.TollgateError:
                metrics.add_metric(name="OutboxClearFailed", unit=MetricUnit.Count, value=1)
                logger.warning("outbox entries not removed; a later write re-publishes them")

    def _process_once(
        self, event: StripeEvent, handler: Callable[[Any, HandlerContext], Effects], ends_at: float
    ) -> Outcome:
        started = self.clock()
        # An absolute lease end inside the invocation, whenever the claim succeeds (also after waiting).
        lease_until = int(ends_at - LEASE_SAFETY_MS / 1000)
        if lease_until <= started:
            # Not enough of the invocation left to hold a lease at all: claim nothing, let Stripe retry.
            raise errors.Conflict("too little invocation time left")
        deadline = started + min(
            self.in_progress_wait_seconds, max(0.0, ends_at - started - 2 * LEASE_SAFETY_MS / 1000)
        )
        while True:
            claim = self.ledger.claim(event.id, event.type, lease_until)
            if claim.status is ClaimStatus.COMPLETED:
                metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
                return Outcome("duplicate", event.id)
            if claim.status is ClaimStatus.CLAIMED:
                break
            if self.clock() >= deadline:
                logger.info("event in progress elsewhere", event_id=event.id)
                raise errors.Conflict("event is being processed")
            self.sleep(0.05)
        try:
            changes = self.apply_effects(handler(event, self.context), publish_by=lease_until)
        except Exception:
            # Release so Stripe's retry can apply it; a crash that skips this leaves a lease that expires.
            try:
                self.ledger.release(event.id, claim.token)
            except errors.TollgateError:
                logger.warning("lease release failed; it expires on its own", event_id=event.id)
            raise
        self.ledger.complete(event.id, claim.token)
        metrics.add_metric(name="WebhookApplied", unit=MetricUnit.Count, value=1)
        logger.info("event applied", event_id=event.id, event_type=event.type, state_changes=changes)
        return Outcome("applied", event.id, changes)

    def apply_effects(self, effects: Effects, *, publish_by: float | None = None) -> int:
        """Commit a handler's effects through the watermark-conditional repository, then publish. Each write's
        watermark names the event (or page) it comes from, which is also its outbox entry's id.

        Shared by the webhook (under the ledger's lease; ``publish_by`` is the lease's end) and the success-page
        check (``publish_by`` None: ``implicit_lease_seconds`` from now). Transitions go through the items'
        outboxes, so a retry or a page reload re-publishes only what is still pending there."""
        until = int(publish_by if publish_by is not None else self.clock() + self.implicit_lease_seconds)
        if effects.link is not None:
            self._link(*effects.link)
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
            self.deletions.mark_deleted(effects.customer_deleted)
        if effects.meter_error is not None:
            metrics.add_metric(name="MeterErrorReports", unit=MetricUnit.Count, value=1)
            self.meter_errors.record(effects.meter_error)
        # A live attempt holding one of our entries (a page reload racing the first load) publishes it itself.
        self._publish(list(effects.announcements) + drain.outgoing)
        self._clear(drain)
        return drain.changes

    def _link(self, user_id: str, customer_id: str) -> None:
        try:
            self.directory.link(user_id, customer_id)
        except errors.Conflict:
            # Permanent: retrying would never succeed. Count it and carry on with the projection.
            metrics.add_metric(name="WebhookLinkConflict", unit=MetricUnit.Count, value=1)
            logger.warning("customer already linked to another user", customer_id=customer_id)


@dataclass
class OutboxDrain:
    """What some state writes leave to publish, and how to settle the items' outbox entries afterwards.

    Per write: the item's pending entries (published when their attempt has ended: the event's own retry, or a
    later event of the subscription taking over a crashed one; left alone while a live attempt holds them), then
    its own transition if it applied (judged against the item as it was, returned by the write). Entries of the
    item's current second are kept as markers; older settled ones are removed (tollgate.subscriptions.outbox)."""

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
                write.sort_key.removeprefix("SUBSCRIPTION#"),
                tracked(result.previous),
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
        """Per item, (entries to shrink to markers, entries to remove): after a publication always; for settled
        entries alone only once ``GARBAGE_LIMIT`` of earlier seconds have piled up."""
        out: dict[tuple[str, str], tuple[dict[str, int], list[str]]] = {}
        for item in self._published.keys() | self._settled.keys():
            second = self._second[item]
            published, settled = self._published.get(item, {}), self._settled.get(item, {})
            old = sorted(e for e, created in {**settled, **published}.items() if created < second)
            if not published and len(old) < GARBAGE_LIMIT:
                continue
            current = {e: created for e, created in {**settled, **published}.items() if created >= second}
            out[item] = (current, old)
        return out


def _stored_second(item: Mapping[str, Any]) -> int:
    raw = item.get(WATERMARK_ATTRIBUTE["subscription"])
    return Watermark.decode(raw).created if isinstance(raw, str) else 0


class Unprocessable(Exception):
    """The handler found the signed event's object unusable (missing or mistyped fields): never retryable."""


def _refusing_unprocessable(
    handler: Callable[[Any, HandlerContext], Effects],
) -> Callable[[Any, HandlerContext], Effects]:
    """Handlers only read the event (and Stripe, whose failures are TollgateErrors that must stay retryable): a
    lookup or type error, or an InvalidRequest they raise, means the payload itself is unusable."""

    @functools.wraps(handler)
    def run(event: Any, ctx: HandlerContext) -> Effects:
        try:
            return handler(event, ctx)
        except (errors.InvalidRequest, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Unprocessable(type(exc).__name__) from None

    return run


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The exact bytes Stripe signed, from an API Gateway HTTP API (payload 2.0) event."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise errors.InvalidRequest()
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise errors.InvalidRequest() from None
    return body.encode("utf-8")


def header(event: Mapping[str, Any], name: str) -> str | None:
    """Header names are case-insensitive; HTTP API lower-cases them, other front doors may not."""
    headers = event.get("headers") or {}
    wanted = name.lower()
    values = [v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted and isinstance(v, str)]
    return ",".join(values) if values else None


def is_snapshot(event: StripeEvent) -> bool:
    return isinstance(event, SnapshotEvent)
