"""Drives the usage function the way Lambda's SQS event source does, in-process: a queue (moto SQS, or the
in-harness :class:`QueueModel` for large runs) -> the real handler in functions/usage/app.py -> the Stripe
emulator's meter events.

Why a queue model at all: moto's in-process SQS recomputes the queue's attributes (a scan of every message) for
each message it sends or returns, so a run costs O(n^2); 500 messages took ~40 s and 5,000 more than 13 minutes
(profiled: ``moto.sqs.models.Queue.attributes`` via ``is_message_valid_based_on_retention_period`` on every
received message). The model keeps exactly the SQS semantics the reporter depends on (at-least-once delivery,
visibility timeout, ``ApproximateReceiveCount``, redrive after ``maxReceiveCount``) and the poison-record test runs
on both backends to show they agree.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.support.events import FakeLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class SourceQueue(Protocol):
    """The SQS operations the event source mapping uses."""

    queue_arn: str

    def send_bodies(self, bodies: list[str]) -> None: ...

    def receive(self, max_messages: int, visibility_timeout: int) -> list[dict[str, Any]]: ...

    def delete(self, receipt_handles: list[str]) -> None: ...

    def release(self, receipt_handle: str) -> None:
        """ChangeMessageVisibility to 0: visible again now."""
        ...

    def lose_delete(self, receipt_handle: str) -> None:
        """A successful record whose delete never happened: SQS delivers it again after the visibility timeout."""
        ...

    def wait_for_in_flight(self) -> bool:
        """Let in-flight messages' visibility expire; False when none are in flight (the queue is drained)."""
        ...


@dataclass
class MotoQueue:
    sqs: Any
    queue_url: str
    queue_arn: str

    def send_bodies(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            assert not answer.get("Failed")

    def receive(self, max_messages: int, visibility_timeout: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < max_messages:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(messages)),
                AttributeNames=["All"],
                VisibilityTimeout=visibility_timeout,
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def delete(self, receipt_handles: list[str]) -> None:
        for start in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
            )

    def release(self, receipt_handle: str) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)

    def lose_delete(self, receipt_handle: str) -> None:
        # Real time here: waiting out the visibility timeout would cost the test its duration; visible now is the
        # same redelivery, sooner.
        self.release(receipt_handle)

    def wait_for_in_flight(self) -> bool:
        return False  # every unfinished message was released: an empty receive means drained


@dataclass
class _Message:
    message_id: str
    body: str
    sent_at: float
    receive_count: int = 0
    first_receive_at: float | None = None
    visible_at: float = 0.0
    receipt_handle: str | None = None


@dataclass
class QueueModel:
    """A standard SQS queue with a redrive policy, on a virtual clock (seconds).

    * Receive returns visible messages only, hides each for the visibility timeout and gives it a new receipt
      handle; ``ApproximateReceiveCount`` counts receives.
    * A message received ``max_receive_count`` times and not deleted moves to ``dead_letters`` on its next
      receive, as SQS does (it is never handed to the function a ``max_receive_count + 1``-th time).
    * Delete needs the current receipt handle; a stale one (the message was received again since) deletes nothing.
    * Nothing is lost or invented: every message is either deleted, in flight, visible or dead-lettered.
    """

    max_receive_count: int
    queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:usage-model"
    now: float = 1_000_000.0
    rng: random.Random = field(default_factory=lambda: random.Random(3))
    messages: dict[str, _Message] = field(default_factory=dict)
    dead_letters: list[_Message] = field(default_factory=list)
    deleted: int = 0
    _handles: dict[str, str] = field(default_factory=dict)  # receipt handle -> message id
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def send_bodies(self, bodies: list[str]) -> None:
        for text in bodies:
            message_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
            self.messages[message_id] = _Message(message_id, text, self.now)

    def receive(self, max_messages: int, visibility_timeout: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for message in list(self.messages.values()):
            if len(out) >= max_messages:
                break
            if message.visible_at > self.now:
                continue
            if message.receive_count >= self.max_receive_count:
                del self.messages[message.message_id]
                self.dead_letters.append(message)
                continue
            message.receive_count += 1
            message.first_receive_at = message.first_receive_at or self.now
            message.visible_at = self.now + visibility_timeout
            message.receipt_handle = f"rh-{next(self._ids)}-{message.message_id}"
            self._handles[message.receipt_handle] = message.message_id
            out.append(self._wire(message))
        return out

    def _wire(self, message: _Message) -> dict[str, Any]:
        return {
            "MessageId": message.message_id,
            "ReceiptHandle": message.receipt_handle,
            "MD5OfBody": hashlib.md5(message.body.encode()).hexdigest(),  # SQS's own body checksum
            "Body": message.body,
            "Attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(int(message.sent_at * 1000)),
                "SenderId": "AIDAEXAMPLE",
                "ApproximateFirstReceiveTimestamp": str(int((message.first_receive_at or self.now) * 1000)),
            },
        }

    def _current(self, receipt_handle: str) -> _Message | None:
        message = self.messages.get(self._handles.pop(receipt_handle, ""))
        if message is None or message.receipt_handle != receipt_handle:
            return None
        return message

    def delete(self, receipt_handles: list[str]) -> None:
        for handle in receipt_handles:
            message = self._current(handle)
            if message is not None:
                del self.messages[message.message_id]
                self.deleted += 1

    def release(self, receipt_handle: str) -> None:
        message = self._current(receipt_handle)
        if message is not None:
            message.visible_at = self.now

    def lose_delete(self, receipt_handle: str) -> None:
        self._handles.pop(receipt_handle, None)  # the handle is forgotten; the message reappears on its own

    def wait_for_in_flight(self) -> bool:
        hidden = [m.visible_at for m in self.messages.values() if m.visible_at > self.now]
        if not hidden:
            return False
        self.now = min(hidden)
        return True


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

    queue: SourceQueue
    handler: Handler
    batch_size: int = 100
    visibility_timeout: int = 30
    redeliver_fraction: float = 0.0  # successes whose delete is "lost": SQS delivers them again
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    before_invoke: Callable[[], None] | None = None
    invocations: int = 0
    seen: dict[str, int] = field(default_factory=dict)  # message id -> times handed to the function
    failures_reported: list[list[str]] = field(default_factory=list)
    lost_deletes: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run_once(self) -> int:
        messages = self.queue.receive(self.batch_size, self.visibility_timeout)
        if not messages:
            return 0
        with self._lock:
            self.invocations += 1
            for m in messages:
                self.seen[m["MessageId"]] = self.seen.get(m["MessageId"], 0) + 1
        if self.before_invoke:
            self.before_invoke()
        event = {"Records": [to_lambda_record(m, self.queue.queue_arn) for m in messages]}
        try:
            answer = self.handler(event, FakeLambdaContext(timeout_seconds=60))
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        except BatchProcessingError:
            failed = {m["MessageId"] for m in messages}  # every record failed: Lambda retries the whole batch
        self.failures_reported.append(sorted(failed))
        deletes = []
        for m in messages:
            if m["MessageId"] in failed:
                # Visible again now instead of after the visibility timeout: the same redelivery, sooner.
                self.queue.release(m["ReceiptHandle"])
                continue
            if m["MessageId"] not in self.lost_deletes and self.rng.random() < self.redeliver_fraction:
                self.lost_deletes.add(m["MessageId"])
                self.queue.lose_delete(m["ReceiptHandle"])
                continue
            deletes.append(m["ReceiptHandle"])
        self.queue.delete(deletes)
        return len(messages)

    def drain(self, max_invocations: int = 10_000) -> None:
        for _ in range(max_invocations):
            if self.run_once() == 0 and not self.queue.wait_for_in_flight():
                return
        raise AssertionError("queue did not drain")


def random_identifier(_: Any) -> str:
    """The naive identifier a control uses: new per attempt."""
    return "rnd_" + uuid.uuid4().hex


class NullLedger:
    """The naive 'no ledger' control: every record is claimable, nothing is remembered."""

    def claim(self, entry: Any) -> Any:
        from tollgate.ports.storage import UsageClaim

        return UsageClaim.CLAIMED

    def settle(self, outcomes: Any) -> list[Any]:
        return []
