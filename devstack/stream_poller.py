"""Plays Lambda's DynamoDB Streams event source mapping for the local stack and the tests.

Built from the template's mapping (``Events: Type: DynamoDB`` on a function): batch size, starting position, filter
criteria, partial batch responses (``ReportBatchItemFailures``), ``BisectBatchOnFunctionError``,
``MaximumRetryAttempts``, ``MaximumRecordAgeInSeconds`` and the on-failure destination, with Lambda's semantics:

- records are read per shard in order; records that match no filter are dropped (and checkpointed) before batching;
- a partial batch response checkpoints before the lowest reported sequence number and retries the records from it
  (the split at that number, as with bisect on); an item identifier that is not a sequence number of the batch is a
  complete failure;
- a function error retries the whole batch, or with bisect on splits it in two halves processed one after the
  other (a split does not count against the retries);
- once a batch has used ``MaximumRetryAttempts`` retries, or holds a record older than ``MaximumRecordAgeInSeconds``,
  its description (``DDBStreamBatchInfo``, not the records) goes to the on-failure destination and the checkpoint
  moves past it.

Stricter than Lambda where it can be: a filter pattern using an operator this poller does not implement is refused
when the mapping is read, and a mapping without a retry bound is refused.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]

SUPPORTED_OPERATORS = frozenset({"prefix", "exists", "anything-but"})


class FunctionError(Exception):
    """The function raised (or timed out): the whole batch failed."""


@dataclass(frozen=True)
class StreamMapping:
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = 3
    bisect_on_error: bool = False
    maximum_record_age_seconds: int | None = None
    report_batch_item_failures: bool = False
    filters: tuple[Any, ...] = ()
    on_failure_arn: str | None = None

    @classmethod
    def from_event_properties(cls, props: Mapping[str, Any]) -> StreamMapping:
        """From a SAM ``Events: Type: DynamoDB`` ``Properties`` mapping (intrinsics already resolved)."""
        retries = props.get("MaximumRetryAttempts")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError("a stream mapping needs a bounded MaximumRetryAttempts (AWS's default retries forever)")
        filters = tuple(json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", []))
        for pattern in filters:
            _check_pattern(pattern)
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        age = props.get("MaximumRecordAgeInSeconds")
        return cls(
            batch_size=int(props.get("BatchSize", 100)),
            starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
            maximum_retry_attempts=retries,
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            maximum_record_age_seconds=int(age) if isinstance(age, int) and age >= 0 else None,
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            filters=filters,
            on_failure_arn=destination if isinstance(destination, str) else None,
        )

    def passes(self, record: Mapping[str, Any]) -> bool:
        return not self.filters or any(_matches(pattern, record) for pattern in self.filters)


def _check_pattern(pattern: Any) -> None:
    if isinstance(pattern, dict):
        for value in pattern.values():
            _check_pattern(value)
    elif isinstance(pattern, list):
        for value in pattern:
            if isinstance(value, dict):
                unknown = set(value) - SUPPORTED_OPERATORS
                if unknown:
                    raise ValueError(f"filter operator(s) not emulated: {sorted(unknown)}")
    else:
        raise ValueError("a filter pattern's leaves are lists of values or operators")


def _matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """EventBridge-style matching: every key of the pattern must match; a list matches if any element does."""
    if not isinstance(value, Mapping):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, Mapping):
            if not _matches(expected, value.get(key)):
                return False
        elif not any(_leaf(option, key in value, value.get(key)) for option in expected):
            return False
    return True


def _leaf(option: Any, present: bool, actual: Any) -> bool:
    if isinstance(option, Mapping):
        if "exists" in option:
            return bool(option["exists"]) == present
        if "prefix" in option:
            return isinstance(actual, str) and actual.startswith(option["prefix"])
        if "anything-but" in option:
            excluded = option["anything-but"]
            excluded = excluded if isinstance(excluded, list) else [excluded]
            return present and actual not in excluded
    return present and actual == option


@dataclass
class PollerStats:
    invocations: int = 0
    delivered: int = 0
    filtered_out: int = 0
    sent_to_failure_destination: int = 0
    failure_messages: list[dict[str, Any]] = field(default_factory=list)


class StreamPoller:
    """One stream, one function. ``poll()`` delivers everything new once; ``start()`` polls in a thread."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        mapping: StreamMapping,
        invoke: Invoke,
        *,
        send_failure: Callable[[dict[str, Any]], None] | None = None,
        function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:publisher",
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._streams = streams
        self._arn = stream_arn
        self._mapping = mapping
        self._invoke = invoke
        self._send_failure = send_failure
        self._function_arn = function_arn
        self._region = region
        self._clock = clock
        self._iterators: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = PollerStats()

    # ------------------------------------------------------------------------------------------- reading
    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def _iterator(self, shard_id: str) -> str:
        if shard_id not in self._iterators:
            kind = "TRIM_HORIZON" if self._mapping.starting_position == "TRIM_HORIZON" else "LATEST"
            self._iterators[shard_id] = self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=kind
            )["ShardIterator"]
        return self._iterators[shard_id]

    def _read(self, shard_id: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        while True:
            answer = self._streams.get_records(ShardIterator=self._iterator(shard_id), Limit=1000)
            batch = answer.get("Records", [])
            if answer.get("NextShardIterator"):
                self._iterators[shard_id] = answer["NextShardIterator"]
            if not batch:
                return records
            records.extend(self._as_lambda_record(r) for r in batch)

    def _as_lambda_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID") or uuid.uuid4().hex,
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self._region,
            "dynamodb": change,
            "eventSourceARN": self._arn,
        }

    def skip_existing(self) -> None:
        """Start after everything the stream holds now (what a mapping created now with LATEST does)."""
        with self._lock:
            for shard_id in self._shards():
                self._read(shard_id)

    # ------------------------------------------------------------------------------------------- delivering
    def poll(self) -> int:
        """Deliver every record that arrived since the last poll, shard by shard; returns how many were delivered."""
        with self._lock:
            before = self.stats.delivered
            for shard_id in self._shards():
                records = self._read(shard_id)
                kept = [r for r in records if self._mapping.passes(r)]
                self.stats.filtered_out += len(records) - len(kept)
                for start in range(0, len(kept), self._mapping.batch_size):
                    self._deliver(shard_id, kept[start : start + self._mapping.batch_size])
            return self.stats.delivered - before

    def _deliver(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        """Deliver one batch until it succeeds, is split, or is given up on (depth-first, in stream order)."""
        retries = 0
        while batch:
            if self._too_old(batch):
                self._give_up(shard_id, batch, "RecordAgeExceeded")
                return
            try:
                remaining = self._invoke_once(batch)
            except FunctionError:
                if self._mapping.bisect_on_error and len(batch) > 1:
                    middle = len(batch) // 2
                    self._deliver(shard_id, batch[:middle])
                    self._deliver(shard_id, batch[middle:])
                    return
                remaining = batch
            if not remaining:
                return
            if retries >= self._mapping.maximum_retry_attempts:
                self._give_up(shard_id, remaining, "RetryAttemptsExhausted")
                return
            retries += 1
            batch = remaining

    def _invoke_once(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records to retry after one invocation (empty: done); FunctionError when the function failed."""
        self.stats.invocations += 1
        self.stats.delivered += len(batch)
        try:
            answer = self._invoke({"Records": batch})
        except Exception as exc:
            raise FunctionError(type(exc).__name__) from exc
        if not self._mapping.report_batch_item_failures:
            return []  # a partial batch response is ignored unless the mapping asked for it, as Lambda does
        failures = answer.get("batchItemFailures") if isinstance(answer, Mapping) else None
        if not failures:
            return []
        sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
        reported = [f.get("itemIdentifier") if isinstance(f, Mapping) else None for f in failures]
        if any(not isinstance(s, str) or s not in sequences for s in reported):
            raise FunctionError("invalid itemIdentifier")  # Lambda treats the whole batch as failed
        first = min(sequences.index(s) for s in reported if isinstance(s, str))
        return batch[first:]

    def _too_old(self, batch: Sequence[Mapping[str, Any]]) -> bool:
        limit = self._mapping.maximum_record_age_seconds
        if limit is None:
            return False
        created = batch[0]["dynamodb"].get("ApproximateCreationDateTime")
        return isinstance(created, (int, float)) and self._clock() - float(created) > limit

    def _give_up(self, shard_id: str, batch: Sequence[Mapping[str, Any]], condition: str) -> None:
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._function_arn,
                "condition": condition,
                "approximateInvokeCount": self._mapping.maximum_retry_attempts + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch),
                "streamArn": self._arn,
            },
        }
        self.stats.sent_to_failure_destination += len(batch)
        self.stats.failure_messages.append(message)
        if self._send_failure is not None:
            self._send_failure(message)

    # ------------------------------------------------------------------------------------------- background
    def start(self, interval_seconds: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.poll()
                except Exception as exc:  # keep polling: a transient moto error must not stop the local stack
                    print(f"stream poller: {type(exc).__name__}: {exc}", flush=True)

        self._thread = threading.Thread(target=loop, name="stream-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _iso(value: Any) -> str | None:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC).isoformat().replace("+00:00", "Z")
    return None
