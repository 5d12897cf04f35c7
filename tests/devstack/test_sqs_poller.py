"""The local SQS event source mapping: batching, partial batch responses, visibility timeout and DLQ redrive.

Runs against a moto server with a short visibility timeout so retries happen within seconds; the function is a
recording fake that fails chosen messages through ``batchItemFailures``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from devstack.aws_resources import local_clients
from devstack.http_api import FunctionFailed
from devstack.sqs_poller import DEFAULT_CONCURRENCY, SqsEventSource, SqsPoller, failed_message_ids

MAX_RECEIVES = 2
VISIBILITY_SECONDS = 1


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return local_clients(moto_endpoint, "us-east-1")("sqs")


@dataclass
class Queues:
    url: str
    arn: str
    dlq_url: str


@pytest.fixture
def queues(sqs: Any) -> Queues:
    name = uuid.uuid4().hex[:10]
    dlq_url = sqs.create_queue(QueueName=f"dlq-{name}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=f"q-{name}",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queues(url, arn, dlq_url)


@dataclass
class FakeUsageFunction:
    """Fails every record whose body is marked poison; raises when told to."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    crash: bool = False

    def __call__(self, function_id: str, event: dict[str, Any]) -> Any:
        self.batches.append(event["Records"])
        if self.crash:
            raise FunctionFailed("Task timed out")
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if "poison" in r["body"]]
        return {"batchItemFailures": failures}


def source(report_failures: bool = True, batch_size: int = 10, window: float = 0.5) -> SqsEventSource:
    return SqsEventSource("UsageFunction", "UsageQueue", batch_size, window, report_failures)


def count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def dlq_bodies(sqs: Any, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return sorted(m["Body"] for m in messages)


def run_until_drained(poller: SqsPoller, sqs: Any, queues: Queues, deadline_seconds: float = 15) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and count(sqs, queues.url):
        poller.poll_once()


def send(sqs: Any, url: str, bodies: list[str]) -> None:
    for body in bodies:
        sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageAttributes={"v": {"DataType": "String", "StringValue": "1"}}
        )


def test_partial_batch_failures_are_retried_then_redriven_to_the_dlq(sqs: Any, queues: Queues) -> None:
    # Given good records and one poison record on the queue
    function = FakeUsageFunction()
    poller = SqsPoller(source(), queue_url=queues.url, queue_arn=queues.arn, sqs=sqs, invoke=function)
    send(sqs, queues.url, ["good-1", "good-2", "poison-1", "good-3"])
    # When the event source mapping runs until the queue is empty
    run_until_drained(poller, sqs, queues)
    # Then the good records were delivered once, the poison one maxReceiveCount times and then moved to the DLQ
    delivered = [r["body"] for batch in function.batches for r in batch]
    assert sorted(b for b in delivered if b.startswith("good")) == ["good-1", "good-2", "good-3"]
    assert delivered.count("poison-1") == MAX_RECEIVES
    assert dlq_bodies(sqs, queues.dlq_url) == ["poison-1"]
    # And the records are shaped as Lambda builds them
    record = function.batches[0][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queues.arn
    assert record["messageAttributes"]["v"] == {
        "stringValue": "1",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert int(record["attributes"]["ApproximateReceiveCount"]) == 1


def test_control_a_mapping_without_partial_batch_responses_loses_the_failed_record(sqs: Any, queues: Queues) -> None:
    # Given the same records, and a naive mapping that ignores batchItemFailures
    function = FakeUsageFunction()
    naive = SqsPoller(
        source(report_failures=False), queue_url=queues.url, queue_arn=queues.arn, sqs=sqs, invoke=function
    )
    send(sqs, queues.url, ["good-1", "poison-1"])
    # When it runs
    run_until_drained(naive, sqs, queues)
    # Then the poison record was deleted after one attempt and never reached the DLQ: the harness tells them apart
    assert [r["body"] for batch in function.batches for r in batch].count("poison-1") == 1
    assert dlq_bodies(sqs, queues.dlq_url) == []


def test_a_crashed_invocation_returns_the_whole_batch_after_the_visibility_timeout(sqs: Any, queues: Queues) -> None:
    # Given a function that crashes (timeout or unhandled error)
    function = FakeUsageFunction(crash=True)
    poller = SqsPoller(source(), queue_url=queues.url, queue_arn=queues.arn, sqs=sqs, invoke=function)
    send(sqs, queues.url, ["a", "b"])
    # When one batch fails
    assert poller.poll_once() == 2
    # Then nothing was deleted: the records are in flight and come back after the visibility timeout
    assert count(sqs, queues.url) == 2
    time.sleep(VISIBILITY_SECONDS + 0.2)
    function.crash = False
    run_until_drained(poller, sqs, queues)
    assert sorted(r["body"] for r in function.batches[-1]) == ["a", "b"]
    assert count(sqs, queues.url) == 0


def test_batches_respect_the_batch_size(sqs: Any, queues: Queues) -> None:
    function = FakeUsageFunction()
    poller = SqsPoller(
        source(batch_size=3, window=0.5), queue_url=queues.url, queue_arn=queues.arn, sqs=sqs, invoke=function
    )
    send(sqs, queues.url, [f"m{i}" for i in range(7)])
    run_until_drained(poller, sqs, queues)
    assert max(len(b) for b in function.batches) <= 3
    assert sorted(r["body"] for b in function.batches for r in b) == sorted(f"m{i}" for i in range(7))


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),  # unknown id: whole batch fails
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ("not json object", {"a", "b"}),
    ],
)
def test_partial_batch_response_rules(result: Any, failed: set[str]) -> None:
    assert failed_message_ids(result, ["a", "b"]) == failed


@dataclass
class SlowFunction:
    """Takes a while per batch and records how many batches were in flight at once."""

    seconds: float = 0.3
    in_flight: int = 0
    peak: int = 0
    delivered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, function_id: str, event: dict[str, Any]) -> Any:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.seconds)
        with self.lock:
            self.in_flight -= 1
            self.delivered.extend(r["body"] for r in event["Records"])
        return {"batchItemFailures": []}


def run_mapping(sqs: Any, queues: Queues, max_concurrency: int, messages: int) -> SlowFunction:
    function = SlowFunction()
    mapping = SqsEventSource("UsageFunction", "UsageQueue", 1, 0, True, max_concurrency=max_concurrency)
    poller = SqsPoller(mapping, queue_url=queues.url, queue_arn=queues.arn, sqs=sqs, invoke=function)
    send(sqs, queues.url, [f"m{i}" for i in range(messages)])
    poller.start()
    try:
        deadline = time.monotonic() + 15
        while len(function.delivered) < messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
    return function


def test_the_mapping_runs_up_to_maximum_concurrency_batches_at_once(sqs: Any, queues: Queues) -> None:
    # Given ScalingConfig.MaximumConcurrency 3, batches of one and a function that takes 0.3 s per batch
    # When 9 messages arrive
    function = run_mapping(sqs, queues, max_concurrency=3, messages=9)
    # Then every message was delivered once, with 3 batches in flight at the peak and never more
    assert sorted(function.delivered) == sorted(f"m{i}" for i in range(9))
    assert function.peak == 3
    assert count(sqs, queues.url) == 0


def test_control_a_one_batch_at_a_time_mapping_never_overlaps_batches(sqs: Any, queues: Queues) -> None:
    # Given the previous behaviour (one batch at a time), the same harness sees no overlap at all
    function = run_mapping(sqs, queues, max_concurrency=1, messages=4)
    assert function.peak == 1


def test_without_maximum_concurrency_the_mapping_uses_lambdas_initial_pollers() -> None:
    assert SqsEventSource("F", "Q", 10, 0, True).concurrency == DEFAULT_CONCURRENCY == 5
    assert SqsEventSource("F", "Q", 10, 0, True, max_concurrency=2).concurrency == 2
