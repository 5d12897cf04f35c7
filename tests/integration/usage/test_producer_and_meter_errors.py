"""The producer helper on moto SQS, and linking Stripe's meter error reports to the ledger on moto DynamoDB."""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest

from tollgate.adapters.dynamodb.meter_errors import link_meter_error_report
from tollgate.adapters.dynamodb.usage_ledger import DynamoUsageLedger
from tollgate.adapters.sqs import UsageProducer
from tollgate.domain.usage import parse_usage_message
from tollgate.ports.storage import LedgerEntry, LedgerStatus, Settled, UsageClaim


def good(usage_id: str, value: int = 3) -> dict[str, object]:
    return {
        "schema_version": 1,
        "usage_id": usage_id,
        "event_name": "api_tokens",
        "user_id": "user-1",
        "value": value,
        "occurred_at": int(time.time()),
    }


def test_producer_queues_valid_records_in_batches_and_returns_the_rejected(aws: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="usage")["QueueUrl"]
    # Given 23 valid records and 2 invalid ones
    records = [good(f"p-{i}") for i in range(23)]
    records.insert(5, {**good("bad-float"), "value": 1.5})
    records.append({**good("bad-nocus"), "user_id": None})
    # When they are sent
    rejected = UsageProducer(sqs, url).send(records)
    # Then the invalid ones come back, not retryable, with their position, and only valid ones are queued
    assert [(r.index, r.usage_id, r.reason, r.retryable) for r in rejected] == [
        (5, "bad-float", "invalid_value", False),
        (24, "bad-nocus", "invalid_customer", False),
    ]
    queued = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        queued += [parse_usage_message(m["Body"]).usage_id for m in got]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
    assert sorted(queued) == sorted(f"p-{i}" for i in range(23))


def test_producer_reports_an_unreachable_queue_as_retryable(aws: None) -> None:
    sqs = boto3.client("sqs")
    rejected = UsageProducer(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/missing").send([good("x")])
    assert [(r.usage_id, r.retryable) for r in rejected] == [("x", True)]


def test_ledger_claim_duplicate_and_conflict(billing_table: str) -> None:
    ledger = DynamoUsageLedger(boto3.client("dynamodb"), billing_table)
    message = parse_usage_message(json.dumps(good("l-1")))
    entry = LedgerEntry("l-1", message.content_hash(), message.meter_identifier(), message.occurred_at)
    # Given a first claim / Then a retry before it is sent may claim again
    assert ledger.claim(entry) is UsageClaim.CLAIMED
    assert ledger.claim(entry) is UsageClaim.CLAIMED
    # When it is settled as sent / Then the same content is a duplicate and other content a conflict
    assert ledger.settle([Settled(entry, LedgerStatus.SENT)]) == []
    assert ledger.claim(entry) is UsageClaim.ALREADY_SENT
    other = LedgerEntry("l-1", "0" * 64, "tg1_l-1_000000000000", message.occurred_at)
    assert ledger.claim(other) is UsageClaim.CONFLICT


def test_ledger_resends_a_pending_record_only_inside_the_resend_window(billing_table: str) -> None:
    client = boto3.client("dynamodb")
    clock = [1_790_000_000.0]
    ledger = DynamoUsageLedger(client, billing_table, clock=lambda: clock[0])
    message = parse_usage_message(json.dumps(good("w-1")))
    entry = LedgerEntry("w-1", message.content_hash(), message.meter_identifier(), message.occurred_at)
    key = {"pk": {"S": "USAGE#w-1"}, "sk": {"S": "USAGE"}}
    # Given a first claim (PENDING, stamped with the first attempt's time)
    assert ledger.claim(entry) is UsageClaim.CLAIMED
    # When it is claimed again 19 h later / Then it may be resent, and the first attempt's time is kept
    clock[0] += 19 * 3600
    assert ledger.claim(entry) is UsageClaim.CLAIMED
    assert client.get_item(TableName=billing_table, Key=key)["Item"]["first_attempt_at"]["N"] == "1790000000"
    # When it is still PENDING 20 h after the first attempt / Then it needs reconciliation, however often asked
    clock[0] += 3600
    assert ledger.claim(entry) is UsageClaim.NEEDS_RECONCILIATION
    assert ledger.claim(entry) is UsageClaim.NEEDS_RECONCILIATION
    # And a record Stripe refused (PARKED) that is redriven later starts a new window
    assert ledger.settle([Settled(entry, LedgerStatus.PARKED, "meter_event_customer_not_found")]) == []
    clock[0] += 30 * 3600
    assert ledger.claim(entry) is UsageClaim.CLAIMED
    assert client.get_item(TableName=billing_table, Key=key)["Item"]["first_attempt_at"]["N"] == str(int(clock[0]))


def test_meter_error_report_is_linked_to_the_ledger_where_the_identifier_matches(billing_table: str) -> None:
    client = boto3.client("dynamodb")
    ledger = DynamoUsageLedger(client, billing_table)
    message = parse_usage_message(json.dumps(good("e-1")))
    entry = LedgerEntry("e-1", message.content_hash(), message.meter_identifier(), message.occurred_at)
    ledger.claim(entry)
    ledger.settle([Settled(entry, LedgerStatus.SENT)])
    # Given an error report (the thin event's data) naming our identifier, a stale one and a foreign one
    data = {
        "developer_message_summary": "3 invalid events",
        "reason": {
            "error_count": 3,
            "error_types": [
                {
                    "code": "meter_event_customer_not_found",
                    "error_count": 3,
                    "sample_errors": [
                        {"error_message": "No such customer", "request": {"identifier": entry.identifier}},
                        {"error_message": "No such customer", "request": {"identifier": "tg1_e-1_ffffffffffff"}},
                        {"error_message": "No such customer", "request": {"identifier": "someone-else-1"}},
                    ],
                }
            ],
        },
        "validation_start": "2026-11-01T00:00:00.000Z",
        "validation_end": "2026-11-01T00:05:00.000Z",
    }
    # When it is linked (twice: webhooks are delivered at least once)
    first = link_meter_error_report(client, billing_table, "evt_1", data)
    again = link_meter_error_report(client, billing_table, "evt_1", data)
    # Then only the exact identifier is linked and the ledger item carries the code; the status is unchanged
    assert first == again
    assert first.linked == ("e-1",)
    assert first.unmatched == ("tg1_e-1_ffffffffffff", "someone-else-1")
    item = client.get_item(TableName=billing_table, Key={"pk": {"S": "USAGE#e-1"}, "sk": {"S": "USAGE"}})["Item"]
    assert item["meter_error_code"]["S"] == "meter_event_customer_not_found"
    assert item["status"]["S"] == "SENT"
    report = client.get_item(
        TableName=billing_table,
        Key={"pk": {"S": f"METER_ERROR#{entry.identifier}"}, "sk": {"S": "REPORT#evt_1"}},
    )["Item"]
    assert report["usage_id"]["S"] == "e-1"
    assert os.environ["TABLE_NAME"] == billing_table


@pytest.mark.parametrize("data", [{}, {"reason": {"error_types": [{"code": "no_meter"}]}}])
def test_a_report_without_samples_links_nothing(billing_table: str, data: dict[str, object]) -> None:
    result = link_meter_error_report(boto3.client("dynamodb"), billing_table, "evt_2", data)
    assert (result.linked, result.unmatched) == ((), ())
