"""Usage drift findings on the billing table (``DRIFT#{day}`` / ``{customer}#{meter}``, docs/data-model.md).

A finding is written when it is new or its totals changed, with its ``usage.drift_detected`` announcement, so the
table's stream publishes it like every other domain event; a daily check that finds the same difference again
writes nothing and announces nothing. Findings expire 90 days after their day.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.changes import ANNOUNCEMENTS_ATTRIBUTE, encode_announcements

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.domain.events import DomainEvent
    from tollgate.domain.usage_drift import Drift

FINDING_RETENTION_SECONDS = 90 * 86_400


def finding_key(drift: Drift) -> dict[str, Any]:
    return {"pk": {"S": f"DRIFT#{drift.cell.day}"}, "sk": {"S": f"{drift.cell.customer_id}#{drift.cell.event_name}"}}


class DynamoDriftFindings:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, drift: Drift, announcement: DomainEvent, checked_at: int) -> bool:
        try:
            with aws_errors("drift_findings.record"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **finding_key(drift),
                        "customer_id": {"S": drift.cell.customer_id},
                        "event_name": {"S": drift.cell.event_name},
                        "day": {"N": str(drift.cell.day)},
                        "sent": {"N": str(drift.sent)},
                        "counted": {"N": str(drift.counted)},
                        "checked_at": {"N": str(checked_at)},
                        "expires_at": {"N": str(drift.cell.day + FINDING_RETENTION_SECONDS)},
                        ANNOUNCEMENTS_ATTRIBUTE: {"S": encode_announcements([announcement])},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR sent <> :sent OR counted <> :counted",
                    ExpressionAttributeValues={
                        ":sent": {"N": str(drift.sent)},
                        ":counted": {"N": str(drift.counted)},
                    },
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True
