"""The producer helper: what a Python service of the application calls to report usage.

Each record is validated against the contract before it leaves the process (a malformed record is returned as
rejected, never queued), then sent with ``SendMessageBatch`` ten at a time. Any other language can produce usage
by sending the same JSON (docs/usage-contract.md) with ``sqs:SendMessage``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from tollgate.usage.contract import MAX_MESSAGE_BYTES, UsageMessage, invalid_reason, valid_usage_id

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

_SQS_BATCH_LIMIT = 10


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
