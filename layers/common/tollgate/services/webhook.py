"""The webhook use case: size cap -> signature -> parse -> dispatch lookup -> claim -> apply -> publish -> complete.

No 2xx is returned before the event's state is committed: a duplicate of a completed event gets 2xx with no
writes, a duplicate of an event another worker holds waits briefly for it and otherwise gets 409 (Stripe retries).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain.effects import Effects
from tollgate.domain.events import DomainEvent
from tollgate.domain.outbox import entries_in
from tollgate.domain.signatures import SignatureRejected, verify_signature
from tollgate.domain.stripe_events import SnapshotEvent, StripeEvent, parse_event
from tollgate.domain.subscriptions import StateWrite, WriteOutcome, WriteResult
from tollgate.observability import MetricUnit, logger, metrics
from tollgate.ports.storage import EventClaimStatus, EventLedger
from tollgate.services.subscription_writes import OutboxDrain, SubscriptionWriter
from tollgate.services.webhook_handlers import FETCHING_HANDLERS, HandlerContext, handler_for

#: Leave this much of the invocation for answering after the lease would lapse.
LEASE_SAFETY_MS = 500


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One HTTP delivery from Stripe: the exact raw body, its Stripe-Signature header, the invocation's time left."""

    body: bytes
    signature: str | None
    remaining_ms: int


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """A 2xx answer; failures raise tollgate errors mapped to HTTP in one place."""

    result: str
    event_id: str | None = None
    state_changes: int = 0


@dataclass
class WebhookService:
    signing_secrets: Callable[[], Sequence[str]]
    ledger: EventLedger
    writer: SubscriptionWriter
    context: HandlerContext
    tolerance_seconds: int = 300
    max_body_bytes: int = 262_144
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    in_progress_wait_seconds: float = 1.0
    #: Snapshot events with one state write commit in that write (see _process_one_write); False: always lease.
    one_write_path: bool = True
    #: The mode of the configured API key (True: live); None accepts both. Read after verification.
    expected_livemode: Callable[[], bool | None] = lambda: None

    def receive(self, delivery: WebhookDelivery) -> WebhookOutcome:
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
            return WebhookOutcome("ignored_mode", event.id)
        handler = handler_for(event)
        if handler is None:
            metrics.add_metric(name="WebhookUnhandledType", unit=MetricUnit.Count, value=1)
            logger.info("event type not handled", event_id=event.id, event_type=event.type)
            return WebhookOutcome("unhandled_type", event.id)
        one_write = self.one_write_path and handler not in FETCHING_HANDLERS and isinstance(event, SnapshotEvent)
        try:
            return self._dispatch(event, _refusing_unprocessable(handler), ends_at, one_write)
        except Unprocessable:
            # Signed by Stripe but not something we can ever apply (e.g. an object without its customer): a non-2xx
            # would only make Stripe retry it for 3 days. Acknowledge, count, log the ids; nothing was written.
            metrics.add_metric(name="WebhookUnprocessable", unit=MetricUnit.Count, value=1)
            logger.warning("signed event cannot be applied", event_id=event.id, event_type=event.type)
            return WebhookOutcome("unprocessable", event.id)

    def _dispatch(
        self, event: StripeEvent, handler: Callable[[Any, HandlerContext], Effects], ends_at: float, one_write: bool
    ) -> WebhookOutcome:
        if one_write and isinstance(event, SnapshotEvent):
            effects = handler(event, self.context)
            if len(effects.writes) == 1 and effects.customer_deleted is None and effects.meter_error is None:
                outcome = self._process_one_write(event, effects, ends_at)
                if outcome is not None:
                    return outcome
        return self._process_once(event, handler, ends_at)

    def _process_one_write(self, event: SnapshotEvent, effects: Effects, ends_at: float) -> WebhookOutcome | None:
        """A snapshot event with one state write: that conditional write IS the commit (1 DynamoDB call).

        The write carries the event id in its watermark, so a redelivery finds it (ALREADY_APPLIED) or a newer
        state (STALE) and writes nothing. A subscription transition rides in the same write as an outbox entry
        (tollgate.domain.outbox), removed once published; a redelivery that finds its own entry still held
        by a live attempt waits (409 if it stays). Handler announcements (``payment.failed``...) are re-derived on
        every delivery, so the ledger records that they went out. A same-second tie needs a fetch: the leased path
        takes over (returns None)."""
        (write,) = effects.writes
        result = self.writer.repository.write_if_newer(write, publish_by=int(ends_at))
        if result.outcome is WriteOutcome.TIE:
            if write.watermark.event_id not in entries_in(result.previous):
                return None
            # Our entry is there: this event was applied, then a later one of the same second committed. A
            # redelivery, not an unknown order: fetching and writing the object again would apply it twice.
            result = WriteResult(WriteOutcome.ALREADY_APPLIED, result.previous)
        drain = OutboxDrain()
        drain.add(write, result, self.clock())
        if effects.link is not None and result.outcome in (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED):
            self.writer.link(*effects.link)
        if drain.own_in_flight:
            # The attempt that committed this very write is still within its time: it is publishing.
            self._await_outbox(write, event.id)
            metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
            return WebhookOutcome("duplicate", event.id)
        announcements = list(effects.announcements)
        if announcements and result.outcome is not WriteOutcome.APPLIED:
            announcements = self._unpublished(event.id, result, announcements)
        self.writer.publish(announcements + drain.outgoing)
        self.writer.settle(drain)
        if announcements:
            self.ledger.mark_completed(event.id, event.type)
        if result.outcome is WriteOutcome.APPLIED:
            metrics.add_metric(name="WebhookApplied", unit=MetricUnit.Count, value=1)
            logger.info("event applied", event_id=event.id, event_type=event.type, state_changes=drain.changes)
            return WebhookOutcome("applied", event.id, drain.changes)
        metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
        return WebhookOutcome("duplicate" if result.outcome is WriteOutcome.ALREADY_APPLIED else "stale", event.id)

    def _unpublished(self, event_id: str, result: WriteResult, announcements: list[DomainEvent]) -> list[DomainEvent]:
        """A redelivery's handler announcements, unless the ledger says an earlier attempt published them. If the
        write is our own and fresh, its attempt may still be publishing: wait briefly, then let Stripe retry."""
        if self.ledger.status(event_id) is EventClaimStatus.COMPLETED:
            return []
        committed_at = result.previous.get("updated_at")
        if (
            result.outcome is WriteOutcome.ALREADY_APPLIED
            and isinstance(committed_at, int)
            and self.clock() < committed_at + self.writer.implicit_lease_seconds
        ):
            deadline = self.clock() + self.in_progress_wait_seconds
            while self.ledger.status(event_id) is not EventClaimStatus.COMPLETED:
                if self.clock() >= deadline:
                    raise errors.Conflict("event is being processed")
                self.sleep(0.05)
            return []
        return announcements

    def _await_outbox(self, write: StateWrite, event_id: str) -> None:
        deadline = self.clock() + self.in_progress_wait_seconds
        while self.writer.repository.outbox_pending(write.customer_id, write.sort_key, event_id):
            if self.clock() >= deadline:
                logger.info("event's announcements in progress elsewhere", event_id=event_id)
                raise errors.Conflict("event is being processed")
            self.sleep(0.05)

    def _process_once(
        self, event: StripeEvent, handler: Callable[[Any, HandlerContext], Effects], ends_at: float
    ) -> WebhookOutcome:
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
            if claim.status is EventClaimStatus.COMPLETED:
                metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
                return WebhookOutcome("duplicate", event.id)
            if claim.status is EventClaimStatus.CLAIMED:
                break
            if self.clock() >= deadline:
                logger.info("event in progress elsewhere", event_id=event.id)
                raise errors.Conflict("event is being processed")
            self.sleep(0.05)
        try:
            changes = self.writer.apply_effects(handler(event, self.context), publish_by=lease_until)
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
        return WebhookOutcome("applied", event.id, changes)


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
