"""The usage function's handler on real-shaped SQS events (tests/events/sqs/): one reporter call per batch, a
partial batch response naming exactly the records SQS must deliver again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.support.events import FakeLambdaContext, load_event
from tollgate.services.usage_reporter import UsageReporter

from .fakes import NOW, FakeDirectory, FakeMetrics, FakeParking, FakeTransport, InMemoryLedger


def sqs_event(name: str) -> dict[str, Any]:
    """A recorded SQS event (tests/events/sqs/)."""
    return load_event(f"sqs/{name.removesuffix('.json')}")


class Parts:
    def __init__(self) -> None:
        self.ledger = InMemoryLedger()
        self.transport = FakeTransport()
        self.directory = FakeDirectory(failing={"user-3"})
        self.parking = FakeParking()
        self.reports = 0

    def reporter(self) -> UsageReporter:
        parts = self

        class CountingReporter(UsageReporter):
            def report(self, records):  # type: ignore[no-untyped-def]
                parts.reports += 1
                return super().report(records)

        return CountingReporter(
            ledger=self.ledger,
            transport=self.transport,
            directory=self.directory,
            parking=self.parking,
            metrics=FakeMetrics(),
            known_meters=frozenset({"api_tokens"}),
            clock=lambda: NOW,
        )


@pytest.fixture
def parts() -> Parts:
    return Parts()


@pytest.fixture
def handler(parts: Parts) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    from functions.usage import app
    from tollgate import bootstrap
    from tollgate.config import Settings

    container = bootstrap.Container(
        Settings(table_name="tollgate-test", stripe_secret_arn="arn:unused", usage_dlq_url="https://sqs/dlq")
    )
    container.__dict__["usage_reporter"] = parts.reporter()  # what the cached property would have built
    bootstrap.reset_container(container)
    yield lambda event: app.handler(event, FakeLambdaContext(timeout_seconds=60))
    bootstrap.reset_container(None)


def test_a_mixed_batch_reports_only_the_temporarily_failed_record(parts: Parts, handler: Any) -> None:
    # Given the real-shaped batch: 3 valid records, a producer re-send, 5 permanently bad ones and one whose
    # customer lookup hits a storage fault (tests/events/sqs/usage_batch.json)
    event = sqs_event("usage_batch.json")
    by_usage_id: dict[str, list[str]] = {}
    for r in event["Records"]:
        usage_id = r["body"].split('"usage_id":"')[1].split('"')[0]
        by_usage_id.setdefault(usage_id, []).append(r["messageId"])
    # When the handler runs
    answer = handler(event)
    # Then one reporter pass decided the batch, and only the storage-fault record is a batch-item failure
    assert parts.reports == 1
    assert answer == {"batchItemFailures": [{"itemIdentifier": by_usage_id["req-0009"][0]}]}
    # And the valid records reached Stripe once, in one request (the re-send of req-0001 rode along)
    assert len(parts.transport.requests) == 1
    assert sorted(e.identifier.split("_")[1] for e in parts.transport.sent) == ["req-0001", "req-0002", "req-0003"]
    # And the bad ones were parked with their reasons, not retried
    reasons = {p.usage_id or p.message_id: p.reason for p in parts.parking.parked}
    assert reasons == {
        by_usage_id["req-0004"][0]: "invalid_json",
        "req-0005": "invalid_value",
        "req-0006": "unknown_meter",
        "req-0007": "timestamp_too_old",
        "req-0008": "unknown_customer",
    }


def test_a_fully_successful_batch_has_no_failures(parts: Parts, handler: Any) -> None:
    answer = handler(sqs_event("usage_single.json"))
    assert answer == {"batchItemFailures": []}
    assert [e.value for e in parts.transport.sent] == [3]


def test_when_every_record_must_be_retried_the_whole_batch_fails(parts: Parts, handler: Any) -> None:
    # Given Stripe rate-limiting the only record of the batch
    from tollgate.ports.stripe import SendResult, SendStatus

    parts.transport.answers["req-0100"] = SendResult(SendStatus.RETRY, "rate_limited")
    # When the handler runs / Then Powertools fails the invocation: Lambda retries the batch as a whole
    with pytest.raises(BatchProcessingError):
        handler(sqs_event("usage_single.json"))
