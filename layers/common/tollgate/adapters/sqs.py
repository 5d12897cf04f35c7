"""SQS: parking unbillable usage on the dead-letter queue, and the producer helper that puts usage on the queue.

Parking: permanently unbillable usage goes to the dead-letter queue with its reason, once, without retries.

The original body is kept unchanged so an operator can fix the cause (a missing customer mapping, a meter to
create) and redrive it; the ledger lets a redriven record through again because it was never marked SENT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from tollgate.domain.usage import MAX_MESSAGE_BYTES, UsageMessage, invalid_reason, valid_usage_id
from tollgate.observability import logger
from tollgate.ports.messaging import ParkedRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

PARK_REASON_ATTRIBUTE = "tollgate-park-reason"
USAGE_ID_ATTRIBUTE = "tollgate-usage-id"
_SQS_BATCH_LIMIT = 10


class DeadLetterParking:
    def __init__(self, client: SQSClient, dead_letter_queue_url: str) -> None:
        self._client = client
        self._queue_url = dead_letter_queue_url

    def park(self, records: Sequence[ParkedRecord]) -> list[str]:
        failed: list[str] = []
        for start in range(0, len(records), _SQS_BATCH_LIMIT):
            chunk = records[start : start + _SQS_BATCH_LIMIT]
            entries: list[SendMessageBatchRequestEntryTypeDef] = []
            for index, record in enumerate(chunk):
                attributes: dict[str, dict[str, str]] = {
                    PARK_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": record.reason},
                    "tollgate-source-message-id": {"DataType": "String", "StringValue": record.message_id},
                }
                if record.usage_id:
                    attributes[USAGE_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": record.usage_id}
                entries.append(
                    {"Id": str(index), "MessageBody": record.body or "(empty)", "MessageAttributes": attributes}  # type: ignore[typeddict-item]
                )
            try:
                answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("parking failed", error_type=type(exc).__name__, records=len(chunk))
                failed.extend(r.message_id for r in chunk)
                continue
            failed.extend(chunk[int(f["Id"])].message_id for f in answer.get("Failed", []))
        unparked = set(failed)
        for record in records:
            # Only what the dead-letter queue took: a refused record is retried, not parked.
            if record.message_id not in unparked:
                logger.warning("usage parked", reason=record.reason, usage_id=record.usage_id)
        return failed


# ----------------------------------------------------------------------------------------------- producer
# What a Python service of the application calls to report usage. Each record is validated against the contract
# before it leaves the process (a malformed record is returned as rejected, never queued), then sent with
# SendMessageBatch ten at a time. Any other language can produce usage by sending the same JSON
# (docs/usage-contract.md) with sqs:SendMessage.


@dataclass(frozen=True, slots=True)
class RejectedUsage:
    """A record that was not queued; ``retryable`` says whether sending it again may succeed."""

    index: int
    usage_id: str | None
    reason: str
    retryable: bool


class UsageProducer:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, records: Iterable[UsageMessage | Mapping[str, Any]]) -> list[RejectedUsage]:
        """Queue ``records``; returns the ones that were not queued (an empty list means all were)."""
        rejected: list[RejectedUsage] = []
        ready: list[tuple[int, UsageMessage, str]] = []
        for index, record in enumerate(records):
            try:
                message = record if isinstance(record, UsageMessage) else UsageMessage.model_validate(dict(record))
            except ValidationError as exc:
                usage_id = valid_usage_id(record.get("usage_id"))  # type: ignore[union-attr]
                rejected.append(RejectedUsage(index, usage_id, invalid_reason(exc), retryable=False))
                continue
            body = message.model_dump_json()
            if len(body.encode()) > MAX_MESSAGE_BYTES:
                rejected.append(RejectedUsage(index, message.usage_id, "oversize", retryable=False))
                continue
            ready.append((index, message, body))
        for start in range(0, len(ready), _SQS_BATCH_LIMIT):
            rejected.extend(self._send_batch(ready[start : start + _SQS_BATCH_LIMIT]))
        return sorted(rejected, key=lambda r: r.index)

    def _send_batch(self, batch: list[tuple[int, UsageMessage, str]]) -> list[RejectedUsage]:
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(position), "MessageBody": body} for position, (_, _, body) in enumerate(batch)
        ]
        try:
            answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError):
            return [RejectedUsage(i, m.usage_id, "queue_unavailable", retryable=True) for i, m, _ in batch]
        rejected = []
        for failure in answer.get("Failed", []):
            index, message, _ = batch[int(failure["Id"])]
            rejected.append(
                RejectedUsage(index, message.usage_id, failure.get("Code", "send_failed"), not failure["SenderFault"])
            )
        return rejected
