"""Meter transports: how accepted usage reaches Stripe.

* :class:`StreamTransport` (default): v2 meter event streams, up to 100 events per request on the meter-events
  host, authenticated by a meter event session token that is cached until shortly before it expires.
* :class:`V1Transport` (fallback, ``USAGE_TRANSPORT=v1``): one ``POST /v1/billing/meter_events`` per event.

Both answer per identifier with a ``SendResult`` (tollgate.ports.stripe). A bare 429 is not retried by the SDK,
so it becomes RETRY (an SQS batch-item failure); a duplicate identifier means Stripe already has the event:
DUPLICATE, done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import stripe

from tollgate.observability import logger
from tollgate.ports.stripe import MeterEvent, SendResult, SendStatus

if TYPE_CHECKING:
    from stripe.params.v2.billing._meter_event_stream_create_params import MeterEventStreamCreateParamsEvent

MAX_STREAM_EVENTS = 100
#: Renew the session this long before Stripe's expiry, so a request never races the token's end.
SESSION_REFRESH_MARGIN_SECONDS = 60.0
DUPLICATE_CODES = frozenset({"duplicate_meter_event"})


def classify(exc: stripe.StripeError) -> SendResult:
    """Map one SDK error to a per-event outcome (for a request that carried a single event)."""
    if isinstance(exc, stripe.RateLimitError) or exc.http_status == 429:
        return SendResult(SendStatus.RETRY, "rate_limited")
    # Before the APIError branch: the pinned SDK raises APIError for a v1 409.
    if exc.http_status == 409 or isinstance(exc, stripe.IdempotencyError):
        return SendResult(SendStatus.RETRY, "stripe_conflict")
    if isinstance(exc, (stripe.APIConnectionError, stripe.APIError)) or (exc.http_status or 0) >= 500:
        return SendResult(SendStatus.RETRY, "stripe_unavailable")
    if exc.http_status in (400, 404) and isinstance(exc, stripe.InvalidRequestError):
        if exc.code in DUPLICATE_CODES:
            return SendResult(SendStatus.DUPLICATE, exc.code)
        return SendResult(SendStatus.REJECTED, exc.code or "invalid_request")
    # Authentication, permissions and the unexpected: our setup is wrong, not the record. Keep it queued.
    return SendResult(SendStatus.RETRY, f"stripe_{type(exc).__name__}")


class StreamTransport:
    """v2 meter event streams with a cached session token."""

    max_batch = MAX_STREAM_EVENTS

    def __init__(
        self, stripe_client: Callable[[], stripe.StripeClient], clock: Callable[[], float] = time.time
    ) -> None:
        # A factory, not a client: the composition root rebuilds the client when the API key rotates, and a
        # session token belongs to the key that created it.
        self._stripe_client = stripe_client
        self._clock = clock
        self._lock = threading.Lock()
        self._token_owner: stripe.StripeClient | None = None
        self._token: str | None = None
        self._token_expires_at = 0.0
        self.sessions_created = 0
        self.requests_sent = 0

    def _session_token(self, client: stripe.StripeClient, *, renew: bool = False) -> str:
        with self._lock:
            expiring = self._clock() >= self._token_expires_at - SESSION_REFRESH_MARGIN_SECONDS
            if renew or self._token is None or self._token_owner is not client or expiring:
                session = client.v2.billing.meter_event_session.create()
                self._token_owner = client
                self._token = session.authentication_token
                self._token_expires_at = _epoch(session.expires_at)
                self.sessions_created += 1
                logger.info("meter event session created", session_id=session.id)
            return self._token

    def send(self, events: Sequence[MeterEvent]) -> dict[str, SendResult]:
        results: dict[str, SendResult] = {}
        for start in range(0, len(events), MAX_STREAM_EVENTS):
            results.update(self._send_chunk(events[start : start + MAX_STREAM_EVENTS]))
        return results

    def _send_chunk(self, chunk: Sequence[MeterEvent]) -> dict[str, SendResult]:
        try:
            self._post(chunk)
        except stripe.StripeError as exc:
            outcome = classify(exc)
            if outcome.status is SendStatus.RETRY:
                return dict.fromkeys((e.identifier for e in chunk), outcome)
            if len(chunk) == 1:
                return {chunk[0].identifier: outcome}
            # One bad or already-recorded event fails the whole request: bisect to find it, so its siblings still
            # get recorded (marking them all duplicate would settle events Stripe never received).
            middle = len(chunk) // 2
            return {**self._send_chunk(chunk[:middle]), **self._send_chunk(chunk[middle:])}
        # v2 streams accept a repeated identifier and drop it: "accepted" covers both.
        return dict.fromkeys((e.identifier for e in chunk), SendResult(SendStatus.ACCEPTED))

    def _post(self, chunk: Sequence[MeterEvent]) -> None:
        events: list[MeterEventStreamCreateParamsEvent] = [
            {
                "event_name": e.event_name,
                "identifier": e.identifier,
                "payload": e.payload(),
                "timestamp": datetime.fromtimestamp(e.timestamp, UTC).isoformat().replace("+00:00", "Z"),
            }
            for e in chunk
        ]
        # No idempotency key of our own: Stripe saves a 500 under a key and replays it for 24 h, so a key fixed by
        # the events would fail every redelivery. The identifier deduplicates; the SDK keys its own retries.
        client = self._stripe_client()
        for attempt in range(2):
            token = self._session_token(client, renew=attempt > 0)
            try:
                self.requests_sent += 1
                client.v2.billing.meter_event_stream.create({"events": events}, {"api_key": token})
                return
            except (stripe.TemporarySessionExpiredError, stripe.AuthenticationError):
                if attempt:
                    raise
                logger.info("meter event session rejected; renewing")


class V1Transport:
    """One v1 meter event per request: the fallback when v2 streams are not available to the account."""

    max_batch = MAX_STREAM_EVENTS

    def __init__(self, stripe_client: Callable[[], stripe.StripeClient]) -> None:
        self._stripe_client = stripe_client
        self.requests_sent = 0

    def send(self, events: Sequence[MeterEvent]) -> dict[str, SendResult]:
        results: dict[str, SendResult] = {}
        client = self._stripe_client()
        for index, event in enumerate(events):
            try:
                self.requests_sent += 1
                client.v1.billing.meter_events.create(
                    {
                        "event_name": event.event_name,
                        "identifier": event.identifier,
                        "payload": event.payload(),
                        "timestamp": event.timestamp,
                    }
                )
                results[event.identifier] = SendResult(SendStatus.ACCEPTED)
            except stripe.StripeError as exc:
                outcome = classify(exc)
                results[event.identifier] = outcome
                if outcome.reason == "rate_limited":
                    # Back off: the rest of the batch goes back to the queue instead of hammering the limit.
                    rest = SendResult(SendStatus.RETRY, "rate_limited")
                    results.update({e.identifier: rest for e in events[index + 1 :]})
                    break
        return results


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
