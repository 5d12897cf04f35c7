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
from dataclasses import dataclass
from typing import Any, Protocol

from tollgate import errors
from tollgate.customers import CustomerDirectory
from tollgate.domain_events import DomainEvent, DomainEventPublisher, domain_event, subscription_transition
from tollgate.observability import MetricUnit, logger, metrics
from tollgate.subscriptions.repository import StateWrite, SubscriptionRepository, WriteOutcome, previous_fields
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
                outcome = self._process_one_write(event, effects)
                if outcome is not None:
                    return outcome
        return self._process_once(event, handler, ends_at)

    def _process_one_write(self, event: SnapshotEvent, effects: Effects) -> Outcome | None:
        """A snapshot event with one state write: that conditional write IS the commit (1 DynamoDB call).

        The write carries the event id in its watermark, so a redelivery finds it (ALREADY_APPLIED) or a newer
        state (STALE) and writes nothing. Only an event with something to announce touches the ledger, after
        publishing: a duplicate whose announcements may not be out yet either waits (409, the first attempt is
        still within its time) or publishes them itself (same ids). A same-second tie needs a fetch: the leased
        path takes over (returns None)."""
        (write,) = effects.writes
        result = self.repository.write_if_newer(write)
        if result.outcome is WriteOutcome.TIE:
            return None
        outgoing: list[DomainEvent] = list(effects.announcements)
        changes = self._record(event.id, write, result.outcome, result.previous, outgoing, True)
        applied_or_retried = result.outcome in (WriteOutcome.APPLIED, WriteOutcome.ALREADY_APPLIED)
        if effects.link is not None and applied_or_retried:
            self._link(*effects.link)
        if outgoing:
            if result.outcome is not WriteOutcome.APPLIED:
                if self.ledger.status(event.id) is ClaimStatus.COMPLETED:
                    metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
                    return Outcome("duplicate", event.id)
                committed_at = result.previous.get("updated_at")
                if (
                    result.outcome is WriteOutcome.ALREADY_APPLIED
                    and isinstance(committed_at, int)
                    and self.clock() < committed_at + self.implicit_lease_seconds
                ):
                    # The attempt that committed is probably still publishing: wait briefly, then let Stripe retry.
                    deadline = self.clock() + self.in_progress_wait_seconds
                    while self.ledger.status(event.id) is not ClaimStatus.COMPLETED:
                        if self.clock() >= deadline:
                            raise errors.Conflict("event is being processed")
                        self.sleep(0.05)
                    return Outcome("duplicate", event.id)
            self.publisher.publish(outgoing)
            self.ledger.mark_completed(event.id, event.type)
        if result.outcome is WriteOutcome.APPLIED:
            metrics.add_metric(name="WebhookApplied", unit=MetricUnit.Count, value=1)
            logger.info("event applied", event_id=event.id, event_type=event.type, state_changes=changes)
            return Outcome("applied", event.id, changes)
        metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
        return Outcome("duplicate" if result.outcome is WriteOutcome.ALREADY_APPLIED else "stale", event.id)

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
            changes = self.apply_effects(event.id, handler(event, self.context))
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

    def apply_effects(self, event_id: str, effects: Effects, *, reannounce: bool = True) -> int:
        """Commit a handler's effects through the watermark-conditional repository, then publish.

        Shared by the webhook (under the ledger's lease) and the success-page check. ``reannounce=False`` (the
        page) does not re-publish a transition when its own earlier identical write is found committed: a page
        reload must not announce the grant twice."""
        if effects.link is not None:
            self._link(*effects.link)
        outgoing: list[DomainEvent] = list(effects.announcements)
        changes = 0
        for write in effects.writes:
            result = self.repository.write_if_newer(write)
            if result.outcome is WriteOutcome.TIE and effects.refetch is not None:
                metrics.add_metric(name="WebhookFetchLatest", unit=MetricUnit.Count, value=1)
                for fetched in effects.refetch():
                    changes += self._commit_one(event_id, fetched, outgoing, reannounce)
                continue
            changes += self._record(event_id, write, result.outcome, result.previous, outgoing, reannounce)
        if effects.customer_deleted:
            self.deletions.mark_deleted(effects.customer_deleted)
        if effects.meter_error is not None:
            metrics.add_metric(name="MeterErrorReports", unit=MetricUnit.Count, value=1)
            self.meter_errors.record(effects.meter_error)
        if outgoing:
            self.publisher.publish(outgoing)
        return changes

    def _link(self, user_id: str, customer_id: str) -> None:
        try:
            self.directory.link(user_id, customer_id)
        except errors.Conflict:
            # Permanent: retrying would never succeed. Count it and carry on with the projection.
            metrics.add_metric(name="WebhookLinkConflict", unit=MetricUnit.Count, value=1)
            logger.warning("customer already linked to another user", customer_id=customer_id)

    def _commit_one(self, event_id: str, write: StateWrite, outgoing: list[DomainEvent], reannounce: bool) -> int:
        result = self.repository.write_if_newer(write)
        return self._record(event_id, write, result.outcome, result.previous, outgoing, reannounce)

    def _record(  # noqa: PLR0917 - the commit's facts, passed explicitly
        self,
        event_id: str,
        write: StateWrite,
        outcome: WriteOutcome,
        previous: Mapping[str, Any],
        outgoing: list[DomainEvent],
        reannounce: bool,
    ) -> int:
        if outcome is WriteOutcome.APPLIED:
            before: Mapping[str, Any] = previous
        elif outcome is WriteOutcome.ALREADY_APPLIED and reannounce:
            before = previous_fields(previous)  # our own earlier attempt committed, then crashed
        else:
            return 0
        if write.aspect == "subscription":
            name = subscription_transition(before, write.fields)
            if name:
                outgoing.append(
                    domain_event(
                        name,
                        event_id,
                        write.watermark.created,
                        customer_id=write.customer_id,
                        subscription_id=write.sort_key.removeprefix("SUBSCRIPTION#"),
                        data={"status": write.fields.get("status"), "previous_status": before.get("status")},
                    )
                )
        return 1 if outcome is WriteOutcome.APPLIED else 0


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
