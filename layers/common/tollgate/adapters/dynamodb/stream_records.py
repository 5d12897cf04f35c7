"""Reading a DynamoDB stream record (as Lambda's event source mapping delivers it) into an ItemChange."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.adapters.dynamodb.subscription_repository import from_dynamo
from tollgate.domain.changes import ItemChange


def item_change(record: Mapping[str, Any]) -> ItemChange:
    """Raises KeyError/TypeError/ValueError on a record that is not a DynamoDB stream record."""
    change = record["dynamodb"]
    old, new = change.get("OldImage"), change.get("NewImage")
    return ItemChange(
        sequence_number=str(change["SequenceNumber"]),
        old=from_dynamo(old) if old else None,
        new=from_dynamo(new) if new else None,
    )


def sequence_number(record: Mapping[str, Any]) -> str | None:
    """The record's sequence number, when it has one (for reporting a record that cannot be read)."""
    change = record.get("dynamodb") if isinstance(record, Mapping) else None
    number = change.get("SequenceNumber") if isinstance(change, Mapping) else None
    return str(number) if isinstance(number, str) and number else None
