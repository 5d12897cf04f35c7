"""The usage ledger: one DynamoDB item per usage id, so a record is billed once even long after Stripe's own
identifier window (about 24 h) has passed.

``claim`` is one conditional ``PutItem`` (``attribute_not_exists``) for a new usage id, the common case; for a
known id the item returned by the failed condition decides, without another write. It succeeds for a new usage
id, or for a known one with the *same* content that was not sent yet (a retry after a failure). It fails for an
id already sent (a duplicate, done) and for an id with different content (a conflict, parked and never sent).
``settle`` records the outcome in batches after Stripe answered. An item lives 36 days past its occurrence time:
after 35 days Stripe rejects the timestamp anyway, so a record that comes back later is parked by the window check
and can never be sent twice.

The gap this closes: Stripe accepted an event but the ledger write after it failed, so the item still says
PENDING and SQS redelivers the record. A resend is harmless only while Stripe still deduplicates the identifier
(about 24 h). The first claim therefore stamps ``first_attempt_at`` before anything is sent, and a PENDING item
may be claimed again only while that stamp is younger than :data:`RESEND_WINDOW_SECONDS` (20 h, a margin inside
Stripe's window). Older, the claim answers NEEDS_RECONCILIATION: the record is parked for an operator to check
Stripe's meter event summaries, never resent, so it cannot count twice. Every send of one identifier thus happens
within 20 h (plus one function timeout) of its first send.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.usage_drift import SentUsage, UsageCell, utc_day
from tollgate.errors import PersistenceUnavailable
from tollgate.ports.storage import LedgerEntry, LedgerStatus, Settled, UsageClaim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LEDGER_RETENTION_SECONDS = 36 * 86_400
#: A PENDING record may be re-sent only this long after its first send attempt: Stripe deduplicates a meter event
#: identifier for about 24 h, and 4 h of margin cover clock skew and a record in flight.
RESEND_WINDOW_SECONDS = 20 * 3600
_BATCH_WRITE_LIMIT = 25


def ledger_key(usage_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"USAGE#{usage_id}"}, "sk": {"S": "USAGE"}}


class DynamoUsageLedger:
    """The ledger on the billing table (see docs/data-model.md, ``USAGE#{usage_id}``)."""

    def __init__(self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def _item(self, entry: LedgerEntry, status: LedgerStatus, reason: str | None = None) -> dict[str, Any]:
        now = int(self._clock())
        item: dict[str, Any] = {
            **ledger_key(entry.usage_id),
            "content_hash": {"S": entry.content_hash},
            "identifier": {"S": entry.identifier},
            "status": {"S": status.value},
            "occurred_at": {"N": str(entry.occurred_at)},
            "updated_at": {"N": str(now)},
            "expires_at": {"N": str(max(now, entry.occurred_at) + LEDGER_RETENTION_SECONDS)},
        }
        if reason:
            item["reason"] = {"S": reason}
        if entry.event_name and entry.customer_id:
            item |= {
                "event_name": {"S": entry.event_name},
                "customer_id": {"S": entry.customer_id},
                "value": {"N": str(entry.value)},
            }
        return item

    def claim(self, entry: LedgerEntry) -> UsageClaim:
        now = int(self._clock())
        item = self._item(entry, LedgerStatus.PENDING)
        item["first_attempt_at"] = {"N": str(now)}
        for _attempt in range(3):
            old = self._put_if(item, "attribute_not_exists(pk)", {})
            if old is None:
                return UsageClaim.CLAIMED
            if old.get("content_hash", {}).get("S") != entry.content_hash:
                return UsageClaim.CONFLICT
            status = old.get("status", {}).get("S")
            if status == LedgerStatus.SENT:
                return UsageClaim.ALREADY_SENT
            if status == LedgerStatus.PENDING:
                # Not settled: resend with the same identifier while Stripe still deduplicates it; nothing to write,
                # first_attempt_at must keep dating the first send.
                first_attempt_at = int(old.get("first_attempt_at", {}).get("N", "0"))
                if first_attempt_at > now - RESEND_WINDOW_SECONDS:
                    return UsageClaim.CLAIMED
                return UsageClaim.NEEDS_RECONCILIATION
            # PARKED (Stripe refused it, so it holds nothing under this identifier): a redrive starts a new window.
            parked = self._put_if(
                item, "content_hash = :h AND #s = :parked", {":h": item["content_hash"], ":parked": {"S": "PARKED"}}
            )
            if parked is None:
                return UsageClaim.CLAIMED
            # Changed under us (another delivery claimed it): decide again from the new state.
        raise PersistenceUnavailable()

    def _put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Conditional put; None when written, else the item that failed the condition."""
        expressions: dict[str, Any] = {}
        if "#s" in condition:
            expressions["ExpressionAttributeNames"] = {"#s": "status"}
        if values:
            expressions["ExpressionAttributeValues"] = values
        try:
            with aws_errors("usage_ledger_claim"):
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression=condition,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **expressions,
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item", {})
            return dict(old)
        return None

    def settle(self, outcomes: Sequence[Settled]) -> list[Settled]:
        # Plain puts (BatchWriteItem has no conditions): safe because only a successful claim with this very
        # content leads here, and rewriting the same final status twice is harmless. The put drops
        # first_attempt_at on purpose: a PARKED record (Stripe refused it) starts a new window when redriven.
        failed: list[Settled] = []
        for chunk in _chunks(outcomes, _BATCH_WRITE_LIMIT):
            by_key = {o.entry.usage_id: o for o in chunk}
            requests: list[Any] = [{"PutRequest": {"Item": self._item(o.entry, o.status, o.reason)}} for o in chunk]
            for _attempt in range(3):
                try:
                    with aws_errors("usage_ledger_settle"):
                        answer = self._client.batch_write_item(RequestItems={self._table: requests})
                except (PersistenceUnavailable, ClientError):
                    break  # these stay PENDING and are reported failed: SQS redelivers, Stripe dedups the resend
                requests = list(answer.get("UnprocessedItems", {}).get(self._table, []))
                if not requests:
                    break
            for request in requests:
                pk = str(request["PutRequest"]["Item"]["pk"]["S"])
                failed.append(by_key[pk.removeprefix("USAGE#")])
        return failed


def _chunks[T](items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DynamoUsageTotals:
    """Sums the SENT ledger records per customer, meter and UTC day, for the days in [start, end).

    A parallel Scan filtered to ``USAGE#`` items sent in the window: the table has no index by day, and a daily scan
    of a table that keeps usage 36 days costs little (about one read unit per 8 KB, eventually consistent) next to
    an index written with every ledger record. At a size where it does not, a sparse index on ``occurred_at`` is
    the next step (docs/operations.md). Records written before the ledger kept what it billed (no ``customer_id``)
    are not counted.
    """

    SEGMENTS = 4

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def sent_between(self, start: int, end: int) -> dict[UsageCell, SentUsage]:
        totals: dict[UsageCell, SentUsage] = {}
        for segment in range(self.SEGMENTS):
            for item in self._segment(segment, start, end):
                cell = UsageCell(
                    utc_day(int(item["occurred_at"]["N"])), item["customer_id"]["S"], item["event_name"]["S"]
                )
                totals[cell] = totals.get(cell, SentUsage(0, 0)) + SentUsage(1, int(item["value"]["N"]))
        return totals

    def _segment(self, segment: int, start: int, end: int) -> Iterable[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": self.SEGMENTS,
            "FilterExpression": "begins_with(pk, :usage) AND #s = :sent AND occurred_at BETWEEN :start AND :last "
            "AND attribute_exists(customer_id)",
            "ProjectionExpression": "customer_id, event_name, occurred_at, #v",
            "ExpressionAttributeNames": {"#s": "status", "#v": "value"},
            "ExpressionAttributeValues": {
                ":usage": {"S": "USAGE#"},
                ":sent": {"S": LedgerStatus.SENT.value},
                ":start": {"N": str(start)},
                ":last": {"N": str(end - 1)},
            },
        }
        while True:
            with aws_errors("usage_totals.scan"):
                page = self._client.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
