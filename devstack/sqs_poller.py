"""The Lambda SQS event source mapping, played locally (moto cannot run functions without Docker).

Settings come from the function's ``Events: Type: SQS`` in template.yaml: batch size, batching window and
``ReportBatchItemFailures``. Like Lambda, the poller gathers a batch until it is full or the window has passed,
invokes the function, deletes what succeeded and leaves the rest to reappear after the queue's visibility
timeout; SQS itself (moto, on receive) moves a message to the DLQ after ``maxReceiveCount`` receives.

Like the real mapping, up to ``ScalingConfig.MaximumConcurrency`` batches are in flight at once (without it,
``DEFAULT_CONCURRENCY``, the number of pollers Lambda starts with): the poller only receives another batch when an
invocation slot is free, so messages never sit received-but-unprocessed while their visibility timeout runs.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from devstack.http_api import FunctionFailed
from devstack.template import Resolver, resources_of_type

log = logging.getLogger("devstack.sqs")

SQS_MAX_RECEIVE = 10  # ReceiveMessage returns at most 10 messages
#: Concurrent batches when the template sets no MaximumConcurrency (Lambda starts a standard queue with 5 pollers).
DEFAULT_CONCURRENCY = 5


@dataclass(frozen=True)
class SqsEventSource:
    function_id: str
    queue_id: str
    batch_size: int
    window_seconds: float
    report_batch_item_failures: bool
    max_concurrency: int | None = None

    @property
    def concurrency(self) -> int:
        """How many batches may be in flight at once."""
        return self.max_concurrency or DEFAULT_CONCURRENCY


def sqs_sources_from_template(resolver: Resolver) -> list[SqsEventSource]:
    sources: list[SqsEventSource] = []
    for lid, resource in resources_of_type(resolver.template, "AWS::Serverless::Function").items():
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            props = event.get("Properties") or {}
            queue = props["Queue"]
            queue_id = queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else str(queue)
            scaling = props.get("ScalingConfig") or {}
            sources.append(
                SqsEventSource(
                    function_id=lid,
                    queue_id=queue_id,
                    batch_size=int(resolver.resolve(props.get("BatchSize", 10))),
                    window_seconds=float(resolver.resolve(props.get("MaximumBatchingWindowInSeconds", 0))),
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    max_concurrency=int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
                )
            )
    return sources


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API attribute shape -> the lower-camel shape Lambda puts in an SQS record."""
    converted: dict[str, Any] = {}
    for name, attr in attributes.items():
        converted[name] = {
            "stringValue": attr.get("StringValue"),
            "binaryValue": attr.get("BinaryValue"),
            "stringListValues": attr.get("StringListValues", []),
            "binaryListValues": attr.get("BinaryListValues", []),
            "dataType": attr.get("DataType"),
        }
        converted[name] = {k: v for k, v in converted[name].items() if v is not None}
    return converted


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes") or {}),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: Any, batch_ids: list[str]) -> set[str]:
    """Lambda's rules for a partial batch response: a malformed answer fails the whole batch."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set() if result is None or isinstance(result, dict) else set(batch_ids)
    failed: set[str] = set()
    for item in result["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


class SqsPoller:
    """One event source mapping: a polling thread feeding up to ``source.concurrency`` concurrent batches to
    ``invoke``."""

    def __init__(
        self,
        source: SqsEventSource,
        *,
        queue_url: str,
        queue_arn: str,
        sqs: Any,
        invoke: Callable[[str, dict[str, Any]], Any],
        region: str = "us-east-1",
        poll_wait_seconds: int = 1,
    ) -> None:
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.sqs = sqs
        self.invoke = invoke
        self.region = region
        self.poll_wait_seconds = poll_wait_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(source.concurrency)
        self._invocations: ThreadPoolExecutor | None = None
        self._count_lock = threading.Lock()
        self.batches = 0

    def start(self) -> None:
        self._invocations = ThreadPoolExecutor(
            max_workers=self.source.concurrency, thread_name_prefix=f"sqs-{self.source.function_id}"
        )
        self._thread = threading.Thread(target=self._run, name=f"sqs-{self.source.function_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_wait_seconds + 5)
        if self._invocations is not None:
            self._invocations.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        assert self._invocations is not None
        while not self._stop.is_set():
            # Receive only when an invocation slot is free, as Lambda's pollers do.
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                batch = self.gather()
            except Exception as exc:  # the mapping keeps polling through faults, like Lambda's
                self._slots.release()
                if self._stop.is_set():
                    return
                log.warning("polling %s failed: %s", self.source.queue_id, exc)
                self._stop.wait(1)
                continue
            if not batch:
                self._slots.release()
                continue
            self._invocations.submit(self._deliver_in_slot, batch)

    def _deliver_in_slot(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.deliver(batch)
        except Exception as exc:
            log.warning("delivering a batch from %s failed: %s", self.source.queue_id, exc)
        finally:
            self._slots.release()

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(SQS_MAX_RECEIVE, count),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def gather(self) -> list[dict[str, Any]]:
        """A batch: full, or whatever arrived within the batching window after the first message."""
        batch = self._receive(self.source.batch_size, self.poll_wait_seconds)
        if not batch:
            return []
        window_ends = time.monotonic() + self.source.window_seconds
        while len(batch) < self.source.batch_size and not self._stop.is_set():
            remaining = window_ends - time.monotonic()
            if remaining <= 0:
                break
            batch.extend(self._receive(self.source.batch_size - len(batch), min(1, int(remaining) or 0)))
            if remaining < 1:
                break
        return batch

    def poll_once(self) -> int:
        """Gather one batch and deliver it in this thread; returns how many messages it held."""
        batch = self.gather()
        if batch:
            self.deliver(batch)
        return len(batch)

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke the function with one batch, delete what succeeded and leave the rest to the queue."""
        with self._count_lock:
            self.batches += 1
        records = [sqs_record(m, self.queue_arn, self.region) for m in batch]
        ids = [r["messageId"] for r in records]
        try:
            result = self.invoke(self.source.function_id, {"Records": records})
        except FunctionFailed as exc:
            # The whole batch returns to the queue when its visibility timeout ends.
            log.warning("batch of %d failed: %s", len(batch), exc)
            return
        failed = failed_message_ids(result, ids) if self.source.report_batch_item_failures else set()
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_MAX_RECEIVE):
            chunk = done[start : start + SQS_MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed:
            log.info("batch of %d: %d failed and will be retried", len(batch), len(failed))
