"""Stripe events through Amazon EventBridge: partner bus -> rule -> SQS queue -> this use case -> the webhook's own
processing (dedup on the one event ledger, order safety, projection, domain events from the table's stream).

Each SQS message is one EventBridge envelope. Trust comes from the envelope's partner source (see
tollgate.domain.bridged_events), checked before anything else; a refused envelope is counted
(``StripeEventSourceRefused``), logged without its content and acknowledged, so it can neither be processed nor
block the queue. A trusted event that fails retryably (a 409 or 5xx on the webhook path) is returned for SQS to
deliver again; after the queue's ``maxReceiveCount`` it waits in the dead-letter queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tollgate import errors
from tollgate.domain.bridged_events import UntrustedEnvelope, open_envelope
from tollgate.domain.json_documents import UnacceptableJson, parse_json_document
from tollgate.domain.stripe_events import event_from_document
from tollgate.observability import MetricName, MetricUnit, logger, metrics
from tollgate.services.webhook import WebhookOutcome, WebhookService


@dataclass(frozen=True, slots=True)
class BridgedMessage:
    """One SQS record of the Stripe events queue: its id (for a partial batch response) and its body."""

    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class BridgedOutcome:
    message_id: str
    result: str
    retry: bool = False
    event_id: str | None = None


@dataclass
class StripeEventBridge:
    webhook: WebhookService
    #: The partner event source names this stack's provisioning created (STRIPE_EVENT_SOURCES).
    trusted_sources: frozenset[str]
    max_body_bytes: int = 262_144
    clock: Callable[[], float] = time.time

    def receive(self, messages: Sequence[BridgedMessage], remaining_ms: int) -> list[BridgedOutcome]:
        ends_at = self.clock() + remaining_ms / 1000
        return [self._one(message, ends_at) for message in messages]

    def _one(self, message: BridgedMessage, ends_at: float) -> BridgedOutcome:
        if len(message.body.encode("utf-8")) > self.max_body_bytes:
            return self._refused(message, "envelope too large")
        try:
            bridged = open_envelope(parse_json_document(message.body), self.trusted_sources)
        except (UnacceptableJson, UntrustedEnvelope) as refused:
            return self._refused(message, getattr(refused, "reason", "unreadable"))
        try:
            event = event_from_document(dict(bridged.detail))
        except errors.InvalidRequest:
            # From Stripe's partner source but not an event we can read: retrying changes nothing.
            metrics.add_metric(name=MetricName.WEBHOOK_UNPROCESSABLE, unit=MetricUnit.Count, value=1)
            logger.warning("bridged event cannot be read", message_id=message.message_id)
            return BridgedOutcome(message.message_id, "unprocessable")
        try:
            outcome: WebhookOutcome = self.webhook.receive_verified(event, ends_at)
        except errors.TollgateError as exc:
            # The webhook would have answered non-2xx (in progress elsewhere, Stripe or DynamoDB failing): SQS
            # delivers it again, as Stripe would redeliver a webhook.
            logger.info("bridged event will be retried", event_id=event.id, reason=type(exc).__name__)
            return BridgedOutcome(message.message_id, type(exc).__name__, retry=True, event_id=event.id)
        return BridgedOutcome(message.message_id, outcome.result, event_id=event.id)

    @staticmethod
    def _refused(message: BridgedMessage, reason: str) -> BridgedOutcome:
        metrics.add_metric(name=MetricName.STRIPE_EVENT_SOURCE_REFUSED, unit=MetricUnit.Count, value=1)
        logger.warning("bridged event refused", message_id=message.message_id, reason=reason)
        return BridgedOutcome(message.message_id, "refused")
