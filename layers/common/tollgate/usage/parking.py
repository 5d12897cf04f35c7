"""Parking: permanently unbillable usage goes to the dead-letter queue with its reason, once, without retries.

The original body is kept unchanged so an operator can fix the cause (a missing customer mapping, a meter to
create) and redrive it; the ledger lets a redriven record through again because it was never marked SENT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tollgate.observability import logger
from tollgate.usage.reporter import ParkedRecord

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
