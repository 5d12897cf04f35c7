"""Drives the usage function the way Lambda's SQS event source does, in-process: moto SQS (visibility, redrive to
the DLQ) -> the real handler in functions/usage/app.py -> the Stripe emulator's meter events."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.support.events import FakeLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def to_lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


@dataclass
class Poller:
    """One event source mapping poller: receive up to ``batch_size``, invoke, delete successes."""

    sqs: Any
    queue_url: str
    queue_arn: str
    handler: Handler
    batch_size: int = 100
    visibility_timeout: int = 30
    redeliver_fraction: float = 0.0  # successes whose delete is "lost": SQS delivers them again
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    before_invoke: Callable[[], None] | None = None
    invocations: int = 0
    seen: dict[str, int] = field(default_factory=dict)  # message id -> times handed to the function
    failures_reported: list[list[str]] = field(default_factory=list)
    _redelivered: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                VisibilityTimeout=self.visibility_timeout,
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def run_once(self) -> int:
        messages = self.receive()
        if not messages:
            return 0
        with self._lock:
            self.invocations += 1
            for m in messages:
                self.seen[m["MessageId"]] = self.seen.get(m["MessageId"], 0) + 1
        if self.before_invoke:
            self.before_invoke()
        event = {"Records": [to_lambda_record(m, self.queue_arn) for m in messages]}
        try:
            answer = self.handler(event, FakeLambdaContext(timeout_seconds=60))
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        except BatchProcessingError:
            failed = {m["MessageId"] for m in messages}  # every record failed: Lambda retries the whole batch
        self.failures_reported.append(sorted(failed))
        deletes = []
        for m in messages:
            redeliver = False
            if m["MessageId"] not in failed and m["MessageId"] not in self._redelivered:
                redeliver = self.rng.random() < self.redeliver_fraction
                if redeliver:
                    self._redelivered.add(m["MessageId"])
            if m["MessageId"] in failed or redeliver:
                # Make it visible again now instead of waiting out the visibility timeout.
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                deletes.append({"Id": str(len(deletes)), "ReceiptHandle": m["ReceiptHandle"]})
        for start in range(0, len(deletes), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=deletes[start : start + 10])
        return len(messages)

    def drain(self, max_invocations: int = 10_000) -> None:
        for _ in range(max_invocations):
            if self.run_once() == 0:
                return
        raise AssertionError("queue did not drain")


def random_identifier(_: Any) -> str:
    """The naive identifier a control uses: new per attempt."""
    return "rnd_" + uuid.uuid4().hex


class NullLedger:
    """The naive 'no ledger' control: every record is claimable, nothing is remembered."""

    def claim(self, entry: Any) -> Any:
        from tollgate.usage.ledger import Claim

        return Claim.CLAIMED

    def settle(self, outcomes: Any) -> list[Any]:
        return []
