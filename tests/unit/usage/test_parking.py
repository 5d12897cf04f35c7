"""Parking to the dead-letter queue: what is reported parked (returned, logged) is what the queue took."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tollgate.adapters.sqs import DeadLetterParking
from tollgate.ports.messaging import ParkedRecord


class PartlyFailingQueue:
    """SendMessageBatch that refuses the entry with Id "1" of every batch."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failed = [{"Id": "1", "SenderFault": False, "Code": "InternalError"}] if len(Entries) > 1 else []
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] != "1"], "Failed": failed}


class DownQueue:
    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")


def records() -> list[ParkedRecord]:
    return [ParkedRecord(f"m{i}", "{}", "invalid_json", f"u-{i}") for i in range(3)]


@pytest.mark.parametrize(("queue", "unparked"), [(PartlyFailingQueue(), ["m1"]), (DownQueue(), ["m0", "m1", "m2"])])
def test_only_records_the_queue_took_are_logged_as_parked(
    queue: Any, unparked: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a dead-letter queue that refuses some or all entries
    parking = DeadLetterParking(queue, "https://sqs.example/dlq")
    # When three records are parked
    with caplog.at_level(logging.INFO):
        failed = parking.park(records())
    # Then the refused ones are returned (they retry) and only the others are logged as parked
    assert failed == unparked
    logged = [r for r in caplog.records if r.getMessage() == "usage parked"]
    assert len(logged) == 3 - len(unparked)
