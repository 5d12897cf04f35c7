"""Stripe's meter error reports on the billing table, linked to the usage ledger.

Stripe validates v2 stream events asynchronously and reports failures later in the thin event
``v1.billing.meter.error_report_triggered``; its ``data.reason.error_types[].sample_errors[].request.identifier``
names the events. Identifiers this package made carry the usage id (``tg1_{usage_id}_{hash}``), so each sample is
stored as ``METER_ERROR#{identifier}`` / ``REPORT#{event_id}`` and, where the ledger holds that exact identifier,
the ledger item gets the error code. The ledger status is left as it is: whether to re-send is an operator's call,
and an automatic resend could count usage twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tollgate.adapters.aws import aws_errors, error_code
from tollgate.adapters.dynamodb.usage_ledger import ledger_key
from tollgate.domain.effects import MeterErrorReport
from tollgate.domain.usage import usage_id_from_identifier
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

METER_ERROR_RETENTION_SECONDS = 90 * 86_400


@dataclass(frozen=True, slots=True)
class MeterErrorLinks:
    linked: tuple[str, ...] = field(default=())  # usage ids whose ledger item now carries the error
    unmatched: tuple[str, ...] = field(default=())  # identifiers with no matching ledger item


def _samples(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for error_type in (data.get("reason") or {}).get("error_types") or []:
        code = str(error_type.get("code") or "unknown")
        for sample in error_type.get("sample_errors") or []:
            identifier = (sample.get("request") or {}).get("identifier")
            if isinstance(identifier, str) and identifier:
                found.append((identifier, code, str(sample.get("error_message") or "")[:500]))
    return found


def link_meter_error_report(
    client: DynamoDBClient,
    table_name: str,
    event_id: str,
    data: Mapping[str, Any],
    *,
    now: float | None = None,
) -> MeterErrorLinks:
    """Record one error report (the event's ``data`` as a dict); safe to call again for a redelivered event."""
    stamp = int(now if now is not None else time.time())
    linked: list[str] = []
    unmatched: list[str] = []
    for identifier, code, message in _samples(data):
        usage_id = usage_id_from_identifier(identifier)
        matched = False
        if usage_id is not None:
            try:
                with aws_errors("meter_error_link"):
                    client.update_item(
                        TableName=table_name,
                        Key=ledger_key(usage_id),
                        UpdateExpression="SET meter_error_code = :c, meter_error_event_id = :e, updated_at = :t",
                        ConditionExpression="identifier = :i",
                        ExpressionAttributeValues={
                            ":c": {"S": code},
                            ":e": {"S": event_id},
                            ":t": {"N": str(stamp)},
                            ":i": {"S": identifier},
                        },
                    )
                matched = True
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        item: dict[str, Any] = {
            "pk": {"S": f"METER_ERROR#{identifier}"},
            "sk": {"S": f"REPORT#{event_id}"},
            "error_code": {"S": code},
            "message": {"S": message or "(none)"},
            "created_at": {"N": str(stamp)},
            "expires_at": {"N": str(stamp + METER_ERROR_RETENTION_SECONDS)},
        }
        if matched and usage_id is not None:
            item["usage_id"] = {"S": usage_id}
            linked.append(usage_id)
        else:
            unmatched.append(identifier)
        with aws_errors("meter_error_record"):
            client.put_item(TableName=table_name, Item=item)
    logger.warning("meter error report", event_id=event_id, linked=len(linked), unmatched=len(unmatched))
    return MeterErrorLinks(tuple(linked), tuple(unmatched))


class DynamoMeterErrorLog:
    """The meter error log port over ``link_meter_error_report``: one key scheme for the webhook and operators."""

    def __init__(self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def record(self, report: MeterErrorReport) -> None:
        link_meter_error_report(self._client, self._table, report.event_id, report.data, now=self._clock())
