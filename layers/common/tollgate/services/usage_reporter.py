"""The reporter use case: one SQS batch of usage messages in, one outcome per message out.

Order of work, cheapest and most final first, so a bad record never costs a Stripe call and never blocks its
siblings: parse and check locally (contract, meter, Stripe's timestamp window) -> map the customer -> claim the
usage id in the ledger -> send the claimed records to Stripe in batches -> settle the ledger.

The DynamoDB round-trips (customer lookups, one conditional claim per usage id, settle writes in batches of the
ledger's batch size) run concurrently on a small thread pool sharing the thread-safe boto3 client: a batch's
ledger phase takes about the slowest call, not the sum of 100. Each usage id is claimed at most once per batch and
every decision is taken afterwards, in record order, from the collected answers, so concurrency changes no outcome.

Outcomes: SENT and DUPLICATE are done; RETRY becomes an SQS batch-item failure (429, 5xx, timeouts, storage
hiccups); PARKED and CONFLICT go to the dead-letter queue with a reason attribute and leave the source queue. A
record left PENDING longer than the ledger's resend window is PARKED as ``needs_reconciliation``, never resent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tollgate.domain.usage import MalformedUsage, UsageMessage, meter_identifier, parse_usage_message
from tollgate.errors import TollgateError
from tollgate.observability import MetricName, MetricUnit, logger
from tollgate.ports.messaging import MetricsSink, ParkedRecord, Parking
from tollgate.ports.storage import (
    SETTLE_BATCH_SIZE,
    CustomerLookup,
    LedgerEntry,
    LedgerStatus,
    Settled,
    UsageClaim,
    UsageLedger,
)
from tollgate.ports.stripe import MeterEvent, MeterTransport, SendResult, SendStatus

#: Stripe accepts timestamps from the past 35 days up to 5 minutes ahead; keep a margin for the time in flight.
PAST_LIMIT_SECONDS = 35 * 86_400 - 600
FUTURE_LIMIT_SECONDS = 5 * 60 - 30
#: Park reason of a record Stripe may already have but would no longer deduplicate
#: (see tollgate.adapters.dynamodb.usage_ledger).
NEEDS_RECONCILIATION = "needs_reconciliation"
#: Concurrent ledger calls per batch (Settings.usage_ledger_concurrency); 1 means one after the other.
DEFAULT_LEDGER_CONCURRENCY = 16


class UsageOutcome(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    PARKED = "parked"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """What the reporter needs from one SQS record."""

    message_id: str
    body: str
    sent_at_ms: int | None = None
    receive_count: int = 1

    @classmethod
    def from_sqs(cls, record: Mapping[str, Any]) -> InboundRecord:
        attributes = record.get("attributes") or {}
        sent = attributes.get("SentTimestamp")
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body") or ""),
            sent_at_ms=int(sent) if sent and str(sent).isdigit() else None,
            receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
        )


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    outcome: UsageOutcome
    reason: str | None = None
    usage_id: str | None = None

    @property
    def retry(self) -> bool:
        return self.outcome is UsageOutcome.RETRY


@dataclass
class _Claimed:
    entry: LedgerEntry
    event: MeterEvent
    message_ids: list[str]


class UsageReporter:
    def __init__(
        self,
        *,
        ledger: UsageLedger,
        transport: MeterTransport,
        directory: CustomerLookup,
        parking: Parking,
        metrics: MetricsSink | None = None,
        known_meters: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
        identifier_for: Callable[[UsageMessage], str] | None = None,
        ledger_concurrency: int = DEFAULT_LEDGER_CONCURRENCY,
    ) -> None:
        self._ledger = ledger
        self._transport = transport
        self._directory = directory
        self._parking = parking
        self._metrics = metrics
        self._known_meters = known_meters
        self._clock = clock
        # Injectable only so tests can show what a random identifier would do; production keeps the default.
        self._identifier_for = identifier_for
        self._ledger_concurrency = max(1, ledger_concurrency)
        # Built once per execution environment; its threads start lazily and are reused by every batch.
        self._pool = (
            ThreadPoolExecutor(max_workers=self._ledger_concurrency, thread_name_prefix="usage-ledger")
            if self._ledger_concurrency > 1
            else None
        )

    @property
    def ledger_concurrency(self) -> int:
        return self._ledger_concurrency

    def report(self, records: Sequence[InboundRecord]) -> dict[str, RecordOutcome]:
        now = self._clock()
        outcomes: dict[str, RecordOutcome] = {}
        to_park: list[ParkedRecord] = []
        bodies = {r.message_id: r.body for r in records}

        def park(
            message_id: str, reason: str, usage_id: str | None, outcome: UsageOutcome = UsageOutcome.PARKED
        ) -> None:
            outcomes[message_id] = RecordOutcome(outcome, reason, usage_id)
            to_park.append(ParkedRecord(message_id, bodies[message_id], reason, usage_id))

        valid: list[tuple[InboundRecord, UsageMessage]] = []
        for record in records:
            try:
                message = parse_usage_message(record.body)
            except MalformedUsage as exc:
                park(record.message_id, exc.reason, exc.usage_id)
                continue
            problem = self._local_problem(message, now)
            if problem:
                park(record.message_id, problem, message.usage_id)
                continue
            valid.append((record, message))

        claimed = self._claim(valid, outcomes, park)
        self._send(claimed, outcomes, park)

        for message_id in self._parking.park(to_park) if to_park else []:
            outcomes[message_id] = RecordOutcome(
                UsageOutcome.RETRY, "parking_unavailable", outcomes[message_id].usage_id
            )
        self._emit(records, outcomes, now)
        return outcomes

    def _local_problem(self, message: UsageMessage, now: float) -> str | None:
        if self._known_meters is not None and message.event_name not in self._known_meters:
            return "unknown_meter"
        if message.occurred_at < now - PAST_LIMIT_SECONDS:
            return "timestamp_too_old"
        if message.occurred_at > now + FUTURE_LIMIT_SECONDS:
            return "timestamp_in_future"
        return None

    def _claim(
        self,
        valid: Sequence[tuple[InboundRecord, UsageMessage]],
        outcomes: dict[str, RecordOutcome],
        park: Callable[..., None],
    ) -> list[_Claimed]:
        customers = self._customers(valid)
        chosen = self._claims_to_make(valid, customers)
        answers = dict(zip(chosen, self._concurrently(self._ledger.claim, list(chosen.values())), strict=True))

        # usage id -> (content hash, claimed batch entry or None when settled without sending)
        seen: dict[str, tuple[str, _Claimed | None, str]] = {}
        claimed: list[_Claimed] = []
        for record, message in valid:
            usage_id = message.usage_id
            content_hash = message.content_hash()
            if usage_id in seen:
                _repeat_in_batch(record.message_id, usage_id, content_hash, seen[usage_id], outcomes, park)
                continue
            customer = _customer_of(message, customers)
            if isinstance(customer, TollgateError):
                outcomes[record.message_id] = RecordOutcome(UsageOutcome.RETRY, "customer_lookup_unavailable", usage_id)
                continue
            if customer is None:
                park(record.message_id, "unknown_customer", usage_id)
                seen[usage_id] = (content_hash, None, record.message_id)
                continue
            # Not chosen yet unseen: a repeat of a record whose claim failed just now; it shares that failure.
            claim = answers.get(record.message_id)
            if claim is None or isinstance(claim, TollgateError):
                outcomes[record.message_id] = RecordOutcome(UsageOutcome.RETRY, "ledger_unavailable", usage_id)
                continue
            group = self._follow_claim(claim, chosen[record.message_id], message, customer, record.message_id, park)
            if group is not None:
                claimed.append(group)
            elif claim is UsageClaim.ALREADY_SENT:
                outcomes[record.message_id] = RecordOutcome(UsageOutcome.DUPLICATE, "ledger", usage_id)
            seen[usage_id] = (content_hash, group, record.message_id)
        return claimed

    def _claims_to_make(
        self,
        valid: Sequence[tuple[InboundRecord, UsageMessage]],
        customers: Mapping[str, str | TollgateError | None],
    ) -> dict[str, LedgerEntry]:
        """First pass, no I/O: message id -> entry to claim. The first record of each usage id with a usable
        customer is the one claimed; the repeats follow its fate (decided afterwards, in record order, exactly as
        one-at-a-time claims would)."""
        chosen: dict[str, LedgerEntry] = {}
        decided: set[str] = set()
        for record, message in valid:
            customer = _customer_of(message, customers)
            if message.usage_id in decided or isinstance(customer, TollgateError):
                continue
            decided.add(message.usage_id)
            if customer is not None:
                chosen[record.message_id] = self._entry(message, customer)
        return chosen

    @staticmethod
    def _follow_claim(  # noqa: PLR0917 - a private step of _claim, called once
        claim: UsageClaim,
        entry: LedgerEntry,
        message: UsageMessage,
        customer: str,
        message_id: str,
        park: Callable[..., None],
    ) -> _Claimed | None:
        """What the ledger's answer means for one record: a batch entry to send (CLAIMED), or it is parked
        (reconciliation needed, conflict); None also for ALREADY_SENT, which the caller records as a duplicate."""
        if claim is UsageClaim.CLAIMED:
            event = MeterEvent(
                entry.identifier, message.event_name, customer, message.value, message.occurred_at, message.dimensions
            )
            return _Claimed(entry, event, [message_id])
        if claim is UsageClaim.NEEDS_RECONCILIATION:
            park(message_id, NEEDS_RECONCILIATION, message.usage_id)
        elif claim is not UsageClaim.ALREADY_SENT:
            park(message_id, "conflict", message.usage_id, UsageOutcome.CONFLICT)
        return None

    def _entry(self, message: UsageMessage, customer_id: str) -> LedgerEntry:
        content_hash = message.content_hash()
        identifier = (
            self._identifier_for(message) if self._identifier_for else meter_identifier(message.usage_id, content_hash)
        )
        # What was billed, kept with the record: the drift check sums it per customer, meter and day.
        return LedgerEntry(
            message.usage_id,
            content_hash,
            identifier,
            message.occurred_at,
            event_name=message.event_name,
            customer_id=customer_id,
            value=message.value,
        )

    def _customers(self, valid: Sequence[tuple[InboundRecord, UsageMessage]]) -> dict[str, str | TollgateError | None]:
        """Stripe customer (None: unknown) or the lookup's error, once per distinct user id of the batch."""
        found: dict[str, str | TollgateError | None] = {}
        users: list[str] = []
        for _, message in valid:
            key = _user_key(message)
            if key is not None and key not in found:
                found[key] = None
                users.append(key)
        found.update(zip(users, self._concurrently(self._directory.customer_for_user, users), strict=True))
        return found

    def _concurrently[T, R](self, call: Callable[[T], R], items: Sequence[T]) -> list[R | TollgateError]:
        """``call`` on every item, at most ``ledger_concurrency`` at a time; a domain error is returned in place."""

        def guarded(item: T) -> R | TollgateError:
            try:
                return call(item)
            except TollgateError as exc:
                return exc

        if self._pool is None or len(items) <= 1:
            return [guarded(item) for item in items]
        return list(self._pool.map(guarded, items))

    def _send(self, claimed: Sequence[_Claimed], outcomes: dict[str, RecordOutcome], park: Callable[..., None]) -> None:
        if not claimed:
            return
        results = self._transmit(claimed)
        settle: list[Settled] = []
        final: dict[str, tuple[_Claimed, UsageOutcome, str | None]] = {}
        for group in claimed:
            result = results[group.entry.identifier]
            usage_id = group.entry.usage_id
            if result.status in (SendStatus.ACCEPTED, SendStatus.DUPLICATE):
                settle.append(Settled(group.entry, LedgerStatus.SENT))
                kind = UsageOutcome.SENT if result.status is SendStatus.ACCEPTED else UsageOutcome.DUPLICATE
                final[usage_id] = (group, kind, result.reason)
            elif result.status is SendStatus.REJECTED:
                settle.append(Settled(group.entry, LedgerStatus.PARKED, result.reason))
                final[usage_id] = (group, UsageOutcome.PARKED, result.reason)
            else:
                final[usage_id] = (group, UsageOutcome.RETRY, result.reason)
        unsettled = self._settle(settle)
        for usage_id, (group, settled_kind, settled_reason) in final.items():
            kind, reason = settled_kind, settled_reason
            if usage_id in unsettled:
                # Stripe has it but the ledger does not say so yet: redeliver; the resend is deduplicated.
                kind, reason = UsageOutcome.RETRY, "ledger_unavailable"
            for message_id in group.message_ids:
                if kind is UsageOutcome.PARKED:
                    park(message_id, reason or "rejected", usage_id)
                else:
                    outcomes[message_id] = RecordOutcome(kind, reason, usage_id)

    def _transmit(self, claimed: Sequence[_Claimed]) -> dict[str, SendResult]:
        """Stripe's answer per identifier, in requests of the transport's batch size."""
        results: dict[str, SendResult] = {}
        step = self._transport.max_batch
        for start in range(0, len(claimed), step):
            events = [c.event for c in claimed[start : start + step]]
            try:
                results.update(self._transport.send(events))
            except TollgateError as exc:
                # Stripe not callable at all (e.g. the key unreadable): these retry, and the batch's parked
                # siblings are still parked with their reasons instead of failing the whole invocation.
                logger.warning("meter transport unavailable", error_type=type(exc).__name__, events=len(events))
                unavailable = SendResult(SendStatus.RETRY, "stripe_unavailable")
                results.update(dict.fromkeys((e.identifier for e in events), unavailable))
        return results

    def _settle(self, settle: Sequence[Settled]) -> set[str]:
        """Final statuses in batches of the ledger's batch write size, concurrently; returns the unsettled ids."""
        batches = [settle[start : start + SETTLE_BATCH_SIZE] for start in range(0, len(settle), SETTLE_BATCH_SIZE)]
        unsettled: set[str] = set()
        for part, answer in zip(batches, self._concurrently(self._ledger.settle, batches), strict=True):
            failed = part if isinstance(answer, TollgateError) else answer
            unsettled.update(s.entry.usage_id for s in failed)
        return unsettled

    def _emit(self, records: Sequence[InboundRecord], outcomes: dict[str, RecordOutcome], now: float) -> None:
        counts = dict.fromkeys(UsageOutcome, 0)
        for outcome in outcomes.values():
            counts[outcome.outcome] += 1
        parked = counts[UsageOutcome.PARKED] + counts[UsageOutcome.CONFLICT]
        to_reconcile = sum(1 for o in outcomes.values() if o.reason == NEEDS_RECONCILIATION)
        oldest = max(((now * 1000 - r.sent_at_ms) / 1000 for r in records if r.sent_at_ms), default=0.0)
        logger.info(
            "usage batch reported",
            records=len(records),
            sent=counts[UsageOutcome.SENT],
            duplicate=counts[UsageOutcome.DUPLICATE],
            retried=counts[UsageOutcome.RETRY],
            parked=parked,
            conflict=counts[UsageOutcome.CONFLICT],
            needs_reconciliation=to_reconcile,
        )
        if self._metrics is None:
            return
        for name, value in (
            (MetricName.USAGE_SENT, counts[UsageOutcome.SENT]),
            (MetricName.USAGE_DUPLICATE, counts[UsageOutcome.DUPLICATE]),
            (MetricName.USAGE_RETRIED, counts[UsageOutcome.RETRY]),
            (MetricName.USAGE_PARKED, parked),
            (MetricName.USAGE_CONFLICT, counts[UsageOutcome.CONFLICT]),
            (MetricName.USAGE_NEEDS_RECONCILIATION, to_reconcile),
        ):
            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self._metrics.add_metric(
            name=MetricName.USAGE_OLDEST_MESSAGE_AGE_SECONDS, unit=MetricUnit.Seconds, value=max(0.0, oldest)
        )


def _user_key(message: UsageMessage) -> str | None:
    """The directory key a message's customer comes from; None when it names its Stripe customer itself."""
    return None if message.stripe_customer_id is not None else (message.user_id or "")


def _customer_of(
    message: UsageMessage, looked_up: Mapping[str, str | TollgateError | None]
) -> str | TollgateError | None:
    if message.stripe_customer_id is not None:
        return message.stripe_customer_id
    return looked_up[message.user_id or ""]


def _repeat_in_batch(  # noqa: PLR0917 - a private helper of _claim, called once
    message_id: str,
    usage_id: str,
    content_hash: str,
    first_seen: tuple[str, _Claimed | None, str],
    outcomes: dict[str, RecordOutcome],
    park: Callable[..., None],
) -> None:
    """A usage id already met earlier in this batch: it shares the first one's fate, or conflicts with it."""
    first_hash, group, first_message = first_seen
    if first_hash != content_hash:
        park(message_id, "conflict", usage_id, UsageOutcome.CONFLICT)
    elif group is not None:
        group.message_ids.append(message_id)  # same record twice in one batch: send once
    elif outcomes[first_message].outcome in (UsageOutcome.PARKED, UsageOutcome.CONFLICT):
        first = outcomes[first_message]
        park(message_id, first.reason or "parked", usage_id, first.outcome)
    else:
        outcomes[message_id] = outcomes[first_message]
