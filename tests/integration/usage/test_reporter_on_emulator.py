"""The usage function end to end in-process: moto SQS -> the real handler -> the Stripe emulator.

Every fault test has a control: the same harness with a naive reporter (random identifier, no ledger) fails it.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

from tollgate.adapters.dynamodb.usage_ledger import DynamoUsageLedger
from tollgate.domain.usage import usage_id_from_identifier
from tollgate.errors import PersistenceUnavailable
from tollgate.ports.storage import UsageClaim

from .conftest import UsageStack, max_receive_count
from .harness import NullLedger, QueueModel, random_identifier

DAY = 86_400
LOAD_MESSAGES = 5_000


def body(usage_id: str, user_id: str, value: int, occurred_at: int | None = None, **extra: Any) -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "usage_id": usage_id,
            "event_name": "api_tokens",
            "user_id": user_id,
            "value": value,
            "occurred_at": occurred_at if occurred_at is not None else int(time.time()) - 30,
            **extra,
        }
    )


def accepted_by_usage_id(stack: UsageStack) -> Counter[str]:
    return Counter(usage_id_from_identifier(e["identifier"]) or e["identifier"] for e in stack.emu.billing.meter_events)


def stripe_total(stack: UsageStack) -> int:
    return sum(e["value"] for e in stack.emu.billing.meter_events)


def load_run(stack: UsageStack, reporter: Any, messages: int, seed: int = 11) -> tuple[int, dict[str, Any]]:
    """5,000-message scenario: 10 % producer duplicates, 10 % SQS redeliveries, 5 % of Stripe calls answered 429
    (half with Stripe-Should-Retry: true). The source queue is the in-harness SQS model with the template's redrive
    policy (moto SQS is O(n^2) at this size, see harness.py); the ledger is DynamoDB (moto), parking goes to the
    moto DLQ, Stripe is the emulator. Returns the oracle sum and run facts."""
    rng = random.Random(seed)
    users = [f"user-{i}" for i in range(5)]
    for user in users:
        stack.customer(user)
    # occurred_at is fixed per record: a producer re-send is the same record, so it must not read the clock again
    # (a second boundary between the two reads would make it a different record under the same id, a conflict)
    occurred_at = int(time.time()) - 30
    records = [(f"use-{i:05d}", rng.choice(users), rng.randint(1, 50), occurred_at) for i in range(messages)]
    oracle = sum(value for _, _, value, _ in records)
    bodies = [body(*r) for r in records]
    bodies += [body(*r) for r in rng.sample(records, messages // 10)]  # producer re-sends: same id, new message
    rng.shuffle(bodies)
    queue = stack.queue_model()
    queue.send_bodies(bodies)
    faults: list[bool] = []

    def maybe_rate_limit() -> None:
        # 5 % of calls at random, and on the first two calls one of each kind so a small run sees both.
        forced = {0: True, 1: False}.get(len(faults)) if len(faults) < 2 else None
        if forced is not None or rng.random() < 0.05:
            should_retry = forced if forced is not None else rng.random() < 0.5
            faults.append(should_retry)
            stack.emu.faults.add("/v2/billing/meter_event_stream", status=429, should_retry=should_retry)

    poller = stack.poller(reporter, queue, redeliver_fraction=0.10, rng=rng, before_invoke=maybe_rate_limit)
    poller.drain()
    return oracle, {"poller": poller, "faults": faults, "bodies": len(bodies), "queue": queue}


@pytest.mark.slow
def test_5000_messages_with_duplicates_redeliveries_and_429s_are_billed_exactly_once(stack: UsageStack) -> None:
    # Given 5,000 usage records plus 10 % producer duplicates, 10 % redeliveries and 5 % of Stripe calls 429
    oracle, facts = load_run(stack, stack.reporter(), LOAD_MESSAGES)
    # Then Stripe's accepted sum equals the oracle exactly, one meter event per usage id, and the DLQ is empty
    assert stripe_total(stack) == oracle
    per_id = accepted_by_usage_id(stack)
    assert len(per_id) == LOAD_MESSAGES
    assert max(per_id.values()) == 1
    assert stack.dlq_messages() == []
    assert facts["queue"].dead_letters == []
    assert facts["queue"].messages == {}
    # And the faults really happened: both kinds of 429, records retried through SQS, lost deletes redelivered
    assert True in facts["faults"]
    assert False in facts["faults"]
    assert any(facts["poller"].failures_reported)
    assert len(facts["poller"].lost_deletes) >= 0.09 * facts["bodies"]
    # And streams carried full batches: far fewer Stripe requests than records
    assert len(stack.stream_requests()) < facts["bodies"] / 20


@pytest.mark.slow
def test_control_a_random_identifier_without_a_ledger_double_counts(stack: UsageStack) -> None:
    # Given the naive reporter (random identifier per attempt, no ledger) on the same scenario
    naive = stack.reporter(ledger=NullLedger(), identifier_for=random_identifier)
    oracle, _ = load_run(stack, naive, LOAD_MESSAGES)
    # Then duplicates and redeliveries are billed again
    assert stripe_total(stack) > oracle
    assert max(Counter(e["payload"]["value"] for e in stack.emu.billing.meter_events).values()) > 1


@pytest.mark.parametrize("backend", ["moto-sqs", "queue-model"])
def test_a_poison_record_fails_alone_and_reaches_the_dlq_after_max_receive_count(
    stack: UsageStack, backend: str
) -> None:
    # Given a batch of 10 where one record's customer lookup always fails (a storage fault that never heals);
    # on moto SQS and on the in-harness queue model the load test uses (both must agree)
    stack.customer("user-ok")

    class FlakyDirectory:
        def customer_for_user(self, user_id: str) -> str | None:
            if user_id == "user-poison":
                raise PersistenceUnavailable()
            return stack.directory.customer_for_user(user_id)

    queue = stack.queue_model() if backend == "queue-model" else stack.moto_queue
    queue.send_bodies([body(f"p-{i}", "user-ok", 10 + i) for i in range(9)] + [body("poison", "user-poison", 1)])
    poller = stack.poller(stack.reporter(directory=FlakyDirectory()), queue, batch_size=10)
    # When the queue is drained
    poller.drain()
    # Then only the poison record was reported failed, every time
    poison_failures = [f for f in poller.failures_reported if f]
    assert all(len(f) == 1 for f in poison_failures)
    assert len(poison_failures) == max_receive_count()
    # And it sits in the DLQ after exactly maxReceiveCount receives
    if isinstance(queue, QueueModel):
        dead = [json.loads(m.body)["usage_id"] for m in queue.dead_letters]
    else:
        dead = [json.loads(m["Body"])["usage_id"] for m in stack.dlq_messages()]
    assert dead == ["poison"]
    assert max(poller.seen.values()) == max_receive_count()
    # And the 9 siblings were received once (the control below: a whole-batch failure redelivers them) and recorded
    # once each
    assert sorted(poller.seen.values()) == [1] * 9 + [max_receive_count()]
    per_id = accepted_by_usage_id(stack)
    assert sorted(per_id) == [f"p-{i}" for i in range(9)]
    assert set(per_id.values()) == {1}
    assert stripe_total(stack) == sum(10 + i for i in range(9))


def test_control_failing_the_whole_batch_for_one_poison_record_redelivers_its_9_siblings(stack: UsageStack) -> None:
    # Given the same batch of 9 good records and 1 poison record, and a naive handler without partial batch
    # responses: one failed record fails the invocation, so Lambda returns the whole batch to the queue
    stack.customer("user-ok")

    class FlakyDirectory:
        def customer_for_user(self, user_id: str) -> str | None:
            if user_id == "user-poison":
                raise PersistenceUnavailable()
            return stack.directory.customer_for_user(user_id)

    queue = stack.queue_model()
    queue.send_bodies([body(f"p-{i}", "user-ok", 10 + i) for i in range(9)] + [body("poison", "user-poison", 1)])
    poller = stack.poller(stack.reporter(directory=FlakyDirectory()), queue, batch_size=10)
    partial = poller.handler

    def whole_batch_fails(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = partial(event, context)
        if answer["batchItemFailures"]:
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
        return answer

    poller.handler = whole_batch_fails
    # When the queue is drained
    poller.drain()
    # Then every sibling was received maxReceiveCount times and all 10 end in the DLQ (each an operator's job),
    # where the partial-response handler above delivers each sibling once and dead-letters only the poison record
    siblings = {m.message_id for m in queue.dead_letters if json.loads(m.body)["usage_id"] != "poison"}
    assert len(siblings) == 9
    assert all(poller.seen[m] == max_receive_count() for m in siblings)
    assert all(len(f) == 10 for f in poller.failures_reported)
    # And the ledger still kept Stripe's count exact (redelivered siblings were duplicates, not re-billed)
    assert stripe_total(stack) == sum(10 + i for i in range(9))
    assert set(accepted_by_usage_id(stack).values()) == {1}


@pytest.mark.parametrize("naive", [False, True], ids=["ledger", "control-no-ledger"])
def test_a_record_redelivered_after_the_identifier_window_is_not_recorded_twice(stack: UsageStack, naive: bool) -> None:
    # Given a record that Stripe accepted
    stack.customer("user-1")
    reporter = stack.reporter(ledger=NullLedger()) if naive else stack.reporter()
    record = body("late-1", "user-1", 42)  # one record, delivered twice: the same body both times
    stack.send_bodies([record])
    stack.poller(reporter).drain()
    assert stripe_total(stack) == 42
    # When Stripe's identifier window (24 h) has passed and the same record arrives again
    stack.emu.clock.advance(25 * 3600)
    stack.send_bodies([record])
    stack.poller(reporter).drain()
    # Then it is not recorded twice (the ledger remembers); without the ledger it would be
    if naive:
        assert stripe_total(stack) == 84
    else:
        assert stripe_total(stack) == 42


def test_timestamps_outside_stripes_window_are_parked_without_a_stripe_call(stack: UsageStack) -> None:
    stack.customer("user-1")
    now = int(time.time())
    # Given records 36 days old and 6 minutes ahead
    stack.send_bodies([body("old", "user-1", 1, now - 36 * DAY), body("future", "user-1", 2, now + 6 * 60)])
    stack.poller(stack.reporter()).drain()
    # Then Stripe was not called and both are parked in the DLQ with their reason
    assert stack.stream_requests() == []
    reasons = {
        json.loads(m["Body"])["usage_id"]: m["MessageAttributes"]["tollgate-park-reason"]["StringValue"]
        for m in stack.dlq_messages()
    }
    assert reasons == {"old": "timestamp_too_old", "future": "timestamp_in_future"}
    # When one 34 days old arrives / Then it is sent
    stack.send_bodies([body("d34", "user-1", 3, now - 34 * DAY)])
    stack.poller(stack.reporter()).drain()
    assert stripe_total(stack) == 3


def test_malformed_messages_make_no_stripe_calls_and_valid_siblings_are_recorded(stack: UsageStack) -> None:
    stack.customer("user-1")
    ts = int(time.time()) - 30
    malformed = [
        "{not json",
        body("neg", "user-1", -5),
        '{"schema_version":1,"usage_id":"nan","event_name":"api_tokens","user_id":"user-1","value":NaN,'
        f'"occurred_at":{ts}}}',
        body("float", "user-1", 2.5),  # type: ignore[arg-type]
        json.dumps(
            {"schema_version": 1, "usage_id": "nocus", "event_name": "api_tokens", "value": 1, "occurred_at": ts}
        ),
        body("unmapped", "user-nobody", 1),
        body("meter", "user-1", 1).replace('"api_tokens"', '"gpu_seconds"'),
        body("big", "user-1", 1, dimensions={"pad": "x" * 100}) + " " * 5000,
    ]
    valid = [body("v1", "user-1", 7), body("v2", "user-1", 8)]
    stack.send_bodies(malformed[:4] + valid[:1] + malformed[4:] + valid[1:])
    stack.poller(stack.reporter()).drain()
    # Then one Stripe request carried exactly the two valid records
    requests = stack.stream_requests()
    assert len(requests) == 1
    assert [e["identifier"].split("_")[1] for e in requests[0]["params"]["events"]] == ["v1", "v2"]
    assert stripe_total(stack) == 15
    # And each malformed message is parked once with a reason
    reasons = sorted(m["MessageAttributes"]["tollgate-park-reason"]["StringValue"] for m in stack.dlq_messages())
    assert reasons == sorted(
        [
            "invalid_json",
            "invalid_value",
            "invalid_value",
            "invalid_value",
            "invalid_customer",
            "unknown_customer",
            "unknown_meter",
            "oversize",
        ]
    )


def test_a_stripe_side_rejection_is_isolated_and_parked(stack: UsageStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Stripe answering a bad event synchronously with a 400 (the emulator's knob; real v2 streams validate
    # asynchronously and report through error reports), and a batch with one such record among valid ones
    monkeypatch.setattr(stack.emu.billing, "synchronous_meter_errors", True)
    customer = stack.customer("user-1")
    ts = int(time.time()) - 30
    ghost = json.dumps(
        {
            "schema_version": 1,
            "usage_id": "ghost",
            "event_name": "api_tokens",
            "stripe_customer_id": "cus_Ghost",
            "value": 9,
            "occurred_at": ts,
        }
    )
    stack.send_bodies([body("a", "user-1", 1), ghost, body("b", "user-1", 2)])
    stack.poller(stack.reporter()).drain()
    # Then the valid ones are recorded and the rejected one is parked with Stripe's code
    assert stack.emu.meter_total("api_tokens", customer) == 3
    dlq = stack.dlq_messages()
    assert [m["MessageAttributes"]["tollgate-park-reason"]["StringValue"] for m in dlq] == [
        "meter_event_customer_not_found"
    ]


@pytest.mark.parametrize("naive", [False, True], ids=["ledger", "control-random-identifier"])
def test_visibility_timeout_shorter_than_processing_still_records_each_usage_once(
    stack: UsageStack, naive: bool
) -> None:
    # Given a visibility timeout of 1 s and Stripe answering in 1.5 s, with two pollers
    stack.customer("user-1")
    stack.send_bodies([body(f"vis-{i}", "user-1", i + 1) for i in range(10)])
    stack.emu.faults.latency_ms = 1500
    reporter = stack.reporter(ledger=NullLedger(), identifier_for=random_identifier) if naive else stack.reporter()
    pollers = [stack.poller(reporter, visibility_timeout=1) for _ in range(2)]
    # When both poll: the second receives the messages again while the first is still sending them
    first = threading.Thread(target=pollers[0].run_once)
    first.start()
    time.sleep(1.2)
    pollers[1].run_once()
    first.join()
    stack.emu.faults.latency_ms = 0
    for poller in pollers:
        poller.drain()
    # Then every usage id was processed twice, yet billed once (the identifier absorbs the overlap)
    assert sum(p.invocations for p in pollers) >= 2
    if naive:
        assert stripe_total(stack) > 55
    else:
        assert stripe_total(stack) == 55
        assert set(accepted_by_usage_id(stack).values()) == {1}


class SettleFailsFirst(DynamoUsageLedger):
    """The ledger write after Stripe's answer fails once (DynamoDB throttled / the function timed out there)."""

    failed_once = False

    def settle(self, outcomes: Any) -> list[Any]:
        if not self.failed_once:
            self.failed_once = True
            return list(outcomes)
        return super().settle(outcomes)


class ResendsStalePending(SettleFailsFirst):
    """Control: the ledger without the resend window, re-sending any PENDING record (the naive rule)."""

    def claim(self, entry: Any) -> UsageClaim:
        answer = super().claim(entry)
        return UsageClaim.CLAIMED if answer is UsageClaim.NEEDS_RECONCILIATION else answer


@pytest.mark.parametrize(
    ("hours_later", "ledger_kind", "expected_total"),
    [(1, "ledger", 42), (25, "ledger", 42), (25, "control-resends-pending", 84)],
    ids=["redelivered-1h-later", "redelivered-25h-later", "control-25h-naive-resend"],
)
def test_stripe_accepted_but_the_ledger_write_failed_then_redelivered(
    stack: UsageStack, hours_later: int, ledger_kind: str, expected_total: int
) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    ledger_class = ResendsStalePending if ledger_kind != "ledger" else SettleFailsFirst
    reporter = stack.reporter(ledger=ledger_class(stack.dynamodb, stack.table, clock=clock), clock=clock)
    stack.customer("user-1")
    # Given Stripe accepted a record and the ledger write after it failed: SQS will deliver it again
    stack.send_bodies([body("gap-1", "user-1", 42)])
    poller = stack.poller(reporter)
    poller.run_once()
    assert poller.failures_reported == [[next(iter(poller.seen))]]
    assert stripe_total(stack) == 42
    # When the redelivery arrives hours later (Stripe deduplicates an identifier for about 24 h)
    stack.emu.clock.advance(hours_later * 3600)
    offset[0] = hours_later * 3600
    poller.drain()
    # Then it is counted once: resent inside the window (Stripe drops the repeat), parked for reconciliation
    # beyond it; the naive ledger resends after Stripe forgot the identifier and counts it twice
    assert stripe_total(stack) == expected_total
    reasons = [m["MessageAttributes"]["tollgate-park-reason"]["StringValue"] for m in stack.dlq_messages()]
    assert reasons == (["needs_reconciliation"] if (hours_later, ledger_kind) == (25, "ledger") else [])
