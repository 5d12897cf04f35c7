"""The webhook use case: size cap -> signature -> parse -> dispatch lookup -> commit -> 2xx.

Most events commit in one conditional write that also carries their announcements; events that read Stripe before
they know their writes, or make several, commit under the event ledger's lease (claim -> apply -> complete, the
completion carrying the announcements). The webhook never publishes: the table's stream does
(tollgate.services.domain_event_relay). No 2xx is returned before the event's state is committed: a duplicate of
a completed event gets 2xx with no state change, a duplicate of an event another worker holds waits briefly for it
and otherwise gets 409 (Stripe retries).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain.effects import Effects
from tollgate.domain.signatures import SignatureRejected, verify_signature
from tollgate.domain.stripe_events import SnapshotEvent, StripeEvent, event_from_document, parse_event
from tollgate.domain.subscriptions import WriteOutcome
from tollgate.observability import MetricName, MetricUnit, logger, metrics
from tollgate.ports.storage import EventClaimStatus, EventLedger
from tollgate.services.subscription_writes import COMMITTED, SubscriptionWriter
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
    #: Snapshot events with at most one state write commit in that write (see _commit_in_one_write); False: always
    #: take the ledger's lease.
    one_write_path: bool = True
    #: The mode of the configured API key (True: live); None accepts both. Read after verification.
    expected_livemode: Callable[[], bool | None] = lambda: None

    def receive(self, delivery: WebhookDelivery) -> WebhookOutcome:
        # The invocation ends at a fixed time: everything spent before the claim (secrets, a tie) shortens the lease.
        ends_at = self.clock() + delivery.remaining_ms / 1000
        if len(delivery.body) > self.max_body_bytes:
            metrics.add_metric(name=MetricName.WEBHOOK_REJECTED, unit=MetricUnit.Count, value=1)
            raise errors.PayloadTooLarge()
        # A blank entry (an empty placeholder in the secret) is no secret: an HMAC under it is forgeable by anyone.
        secrets = [s for s in self.signing_secrets() if s.strip()]
        if not secrets:
            raise errors.ConfigurationError("no webhook signing secret configured")  # fail closed: 5xx
        try:
            verify_signature(delivery.body, delivery.signature, secrets, self.tolerance_seconds, int(self.clock()))
        except SignatureRejected as rejected:
            metrics.add_metric(name=MetricName.WEBHOOK_SIGNATURE_FAILED, unit=MetricUnit.Count, value=1)
            logger.warning("webhook signature rejected", reason=rejected.reason)
            raise errors.InvalidRequest() from None
        return self.receive_verified(parse_event(delivery.body), ends_at)

    def receive_verified(self, event: StripeEvent, ends_at: float) -> WebhookOutcome:
        """A delivery whose origin is established (a verified signature, or a trusted EventBridge partner source):
        everything from here on is the same for every ingress."""
        # How far behind Stripe the deliveries are (retries after an outage show here first); replays are old by
        # definition and do not count.
        created = event.created if isinstance(event, SnapshotEvent) else event.created_epoch
        metrics.add_metric(
            name=MetricName.WEBHOOK_LAG_SECONDS, unit=MetricUnit.Seconds, value=max(0.0, self.clock() - created)
        )
        return self.apply(event, ends_at)

    def replay(self, document: Mapping[str, Any], *, seconds: float = 60.0) -> WebhookOutcome:
        """An event Stripe lists but never delivered (or delivered while we answered non-2xx), fed through the same
        processing as a delivery, after the same checks but the signature (it comes from Stripe's API, over our
        authenticated connection). Idempotent like a redelivery."""
        try:
            event = event_from_document(document)
        except errors.InvalidRequest:
            metrics.add_metric(name=MetricName.WEBHOOK_UNPROCESSABLE, unit=MetricUnit.Count, value=1)
            logger.warning("listed event cannot be read", event_id=str(document.get("id", ""))[:255])
            return WebhookOutcome("unprocessable", None)
        return self.apply(event, self.clock() + seconds)

    def apply(self, event: StripeEvent, ends_at: float) -> WebhookOutcome:
        """Everything after the event is known to come from Stripe: mode, dispatch by type, commit."""
        expected = self.expected_livemode()
        if expected is not None and event.livemode != expected:
            metrics.add_metric(name=MetricName.WEBHOOK_WRONG_MODE, unit=MetricUnit.Count, value=1)
            logger.warning("event from the other mode ignored", event_id=event.id)
            return WebhookOutcome("ignored_mode", event.id)
        handler = handler_for(event)
        if handler is None:
            metrics.add_metric(name=MetricName.WEBHOOK_UNHANDLED_TYPE, unit=MetricUnit.Count, value=1)
            logger.debug("event type not handled", event_id=event.id, event_type=event.type)
            return WebhookOutcome("unhandled_type", event.id)
        one_write = self.one_write_path and handler not in FETCHING_HANDLERS and isinstance(event, SnapshotEvent)
        try:
            return self._dispatch(event, _refusing_unprocessable(handler), ends_at, one_write)
        except Unprocessable:
            # Signed by Stripe but not something we can ever apply (e.g. an object without its customer): a non-2xx
            # would only make Stripe retry it for 3 days. Acknowledge, count, log the ids; nothing was written.
            metrics.add_metric(name=MetricName.WEBHOOK_UNPROCESSABLE, unit=MetricUnit.Count, value=1)
            logger.warning("signed event cannot be applied", event_id=event.id, event_type=event.type)
            return WebhookOutcome("unprocessable", event.id)

    def _dispatch(
        self, event: StripeEvent, handler: Callable[[Any, HandlerContext], Effects], ends_at: float, one_write: bool
    ) -> WebhookOutcome:
        if one_write and isinstance(event, SnapshotEvent):
            effects = handler(event, self.context)
            if (
                len(effects.writes) <= 1
                and effects.customer_deleted is None
                and effects.meter_error is None
                and effects.owner is None
            ):
                return self._commit_in_one_write(event, effects)
        return self._process_once(event, handler, ends_at)

    def _commit_in_one_write(self, event: SnapshotEvent, effects: Effects) -> WebhookOutcome:
        """A snapshot event with at most one state write: that conditional write IS the commit, and it carries the
        event's announcements to the table's stream (1 DynamoDB call).

        The write names the event in its watermark, so a redelivery finds it (ALREADY_APPLIED), a newer state
        (STALE) or, within the same second, itself among the applied events; none writes again. Announcements
        that found no write to ride in (a stale write, or an event with no state) are recorded once on the event's
        ledger item instead, unless they only say what a newer write already said."""
        if not effects.writes:
            recorded = not effects.announcements or self.ledger.announce(event.id, event.type, effects.announcements)
            return self._answer(event, WriteOutcome.APPLIED if recorded else WriteOutcome.ALREADY_APPLIED, 0)
        (write,) = effects.writes
        committed = self.writer.write(write, effects, effects.announcements)
        outcome = committed.result.outcome
        if effects.link is not None and outcome in COMMITTED:
            self.writer.link(*effects.link)
        if effects.announcements and not committed.carried and effects.announce_when_stale:
            self.ledger.announce(event.id, event.type, effects.announcements)
        return self._answer(event, outcome, int(outcome is WriteOutcome.APPLIED))

    @staticmethod
    def _answer(event: StripeEvent, outcome: WriteOutcome, changes: int) -> WebhookOutcome:
        if outcome is WriteOutcome.APPLIED:
            metrics.add_metric(name=MetricName.WEBHOOK_APPLIED, unit=MetricUnit.Count, value=1)
            logger.info("event applied", event_id=event.id, event_type=event.type, state_changes=changes)
            return WebhookOutcome("applied", event.id, changes)
        metrics.add_metric(name=MetricName.WEBHOOK_DUPLICATE, unit=MetricUnit.Count, value=1)
        return WebhookOutcome("duplicate" if outcome is WriteOutcome.ALREADY_APPLIED else "stale", event.id)

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
                metrics.add_metric(name=MetricName.WEBHOOK_DUPLICATE, unit=MetricUnit.Count, value=1)
                return WebhookOutcome("duplicate", event.id)
            if claim.status is EventClaimStatus.CLAIMED:
                break
            if self.clock() >= deadline:
                logger.info("event in progress elsewhere", event_id=event.id)
                raise errors.Conflict("event is being processed")
            self.sleep(0.05)
        try:
            effects = handler(event, self.context)
            changes = self.writer.apply_effects(effects)
        except Exception:
            # Release so Stripe's retry can apply it; a crash that skips this leaves a lease that expires.
            try:
                self.ledger.release(event.id, claim.token)
            except errors.TollgateError:
                logger.warning("lease release failed; it expires on its own", event_id=event.id)
            raise
        # The completion carries the announcements to the stream: published once the event's state is in.
        self.ledger.complete(event.id, claim.token, effects.announcements)
        metrics.add_metric(name=MetricName.WEBHOOK_APPLIED, unit=MetricUnit.Count, value=1)
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
