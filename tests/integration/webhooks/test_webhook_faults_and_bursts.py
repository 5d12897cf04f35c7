"""Load and fault tests with controls: identical concurrent deliveries, and crashes between claim and commit."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from tests.integration.webhooks.harness import Harness, build_harness, load_event
from tollgate import errors
from tollgate.adapters.dynamodb.event_ledger import DynamoEventLedger
from tollgate.domain.subscriptions import StateWrite
from tollgate.ports.storage import EventClaim, EventClaimStatus

pytestmark = pytest.mark.slow


class Crash(BaseException):
    """A Lambda timeout between claim and commit: no `except Exception` clean-up runs."""


# The full sizes: 200 rounds of 64 identical concurrent deliveries; 2,000 events with 5 % crashes.
BURST_TRIALS, BURST_FANOUT = 200, 64
CRASH_EVENTS = 2_000


def sub_event(index: int) -> dict[str, Any]:
    event = load_event("customer.subscription.updated")
    event["id"] = f"evt_burst{index:06d}"
    event["created"] = 1_790_000_000 + index
    event["data"]["object"]["id"] = f"sub_{index:06d}"
    return event


class MarkSeenFirstLedger(DynamoEventLedger):
    """The naive strategy: record the event as done at claim time, before its work."""

    def claim(self, event_id: str, event_type: str, lease_until: int) -> EventClaim:
        claim = super().claim(event_id, event_type, lease_until)
        if claim.status is EventClaimStatus.CLAIMED:
            self.complete(event_id, claim.token)
        return claim


def run_crash_scenario(h: Harness, events: int, crash_every: int) -> tuple[int, int, int]:
    """Deliver `events` events; the first attempt of every `crash_every`-th crashes before its commit. Retry
    (Stripe-style, on a compressed clock) until every event was acknowledged. Return (lost, doubled, crashes)."""
    crash_first = {f"evt_burst{i:06d}" for i in range(0, events, crash_every)}

    def maybe_crash(write: StateWrite) -> None:
        if write.watermark.event_id in crash_first:
            crash_first.discard(write.watermark.event_id)
            raise Crash

    h.repository.before_write = maybe_crash
    pending = {i: sub_event(i) for i in range(events)}
    crashes = 0
    for _ in range(10):  # Stripe retries with backoff; each round is later than every lease
        for i, event in list(pending.items()):
            try:
                h.deliver(event, remaining_ms=5000)
                del pending[i]
            except Crash:
                crashes += 1
            except errors.TollgateError:
                pass
        if not pending:
            break
        h.clock.now += 30
    client = boto3.client("dynamodb")
    applied = set(h.repository.applied)
    lost = 0
    for i in range(events):
        item = client.get_item(
            TableName="tollgate-test",
            Key={"pk": {"S": "CUSTOMER#cus_TestProjection01"}, "sk": {"S": f"SUBSCRIPTION#sub_{i:06d}"}},
        ).get("Item")
        if item is None or f"evt_burst{i:06d}" not in applied:
            lost += 1
    doubled = len(h.repository.applied) - len(applied)
    return lost + len(pending), doubled, crashes


def test_crashes_between_claim_and_commit_lose_nothing_and_apply_nothing_twice(billing_table: str) -> None:
    # Given the 2,000 events, 5 % of whose first attempt dies after the claim and before the commit
    h = build_harness(boto3.client("dynamodb"), billing_table)
    lost, doubled, crashes = run_crash_scenario(h, CRASH_EVENTS, 20)
    # Then every event is applied exactly once after Stripe's retries
    assert crashes == CRASH_EVENTS // 20
    assert (lost, doubled) == (0, 0)


def test_control_marking_events_seen_first_loses_the_crashed_ones(billing_table: str) -> None:
    client = boto3.client("dynamodb")
    h = build_harness(client, billing_table)
    h.service.ledger = MarkSeenFirstLedger(client, billing_table, clock=h.clock)
    h.service.one_write_path = False  # every event through the ledger, which marks it seen first
    lost, _, crashes = run_crash_scenario(h, 100, 20)
    assert crashes == 5
    assert lost == 5  # the naive ledger answered 2xx to every retry of a crashed event


class SeenMeansDoneLedger(DynamoEventLedger):
    """The naive strategy: any record of the event, even another worker's live lease, counts as "done"."""

    def claim(self, event_id: str, event_type: str, lease_until: int) -> EventClaim:
        claim = super().claim(event_id, event_type, lease_until)
        return EventClaim(EventClaimStatus.COMPLETED) if claim.status is EventClaimStatus.IN_PROGRESS else claim


def run_burst(h: Harness, trials: int, fanout: int) -> tuple[list[str], int, int, int]:
    """`fanout` identical deliveries of each of `trials` events at once. Returns (applied event ids, 2xx answered
    before that event's commit, 2xx, refused).

    "Before its commit" is judged by the table when the 2xx is in hand: each trial's event is its subscription's
    first write, so a 2xx answered while the item does not exist yet was answered before the commit. (Ordering a
    counter taken after the committing call returns would misjudge a duplicate that answers while the committing
    thread is still parsing DynamoDB's reply.)"""
    early_acks = refused = acked = 0

    def committed(event: dict[str, Any]) -> bool:
        obj = event["data"]["object"]
        key = {"pk": {"S": f"CUSTOMER#{obj['customer']}"}, "sk": {"S": f"SUBSCRIPTION#{obj['id']}"}}
        return "Item" in h.repository._client.get_item(TableName=h.repository._table, Key=key, ConsistentRead=True)

    with ThreadPoolExecutor(max_workers=16) as pool:
        for trial in range(trials):
            event = sub_event(trial)

            def deliver(_: int, event: dict[str, Any] = event) -> tuple[str, bool]:
                try:
                    h.deliver(event)
                except errors.Conflict:
                    return "409", True
                return "2xx", committed(event)

            for status, was_committed in pool.map(deliver, range(fanout)):
                if status == "2xx":
                    acked += 1
                    early_acks += not was_committed
                else:
                    refused += 1
    return h.repository.applied, early_acks, acked, refused


def test_identical_concurrent_deliveries_apply_once_and_never_ack_before_commit(billing_table: str) -> None:
    # Given 64 identical deliveries of the same event at once, 200 times over
    h = build_harness(boto3.client("dynamodb"), billing_table, wait_seconds=0.0)
    applied, early_acks, acked, refused = run_burst(h, BURST_TRIALS, BURST_FANOUT)
    # Then each trial changed state exactly once, and no 2xx preceded its commit
    assert sorted(applied) == sorted(f"evt_burst{i:06d}" for i in range(BURST_TRIALS))
    assert early_acks == 0
    assert acked + refused == BURST_TRIALS * BURST_FANOUT
    assert acked >= BURST_TRIALS


def test_control_treating_a_live_lease_as_done_acks_before_the_commit(billing_table: str) -> None:
    client = boto3.client("dynamodb")
    h = build_harness(client, billing_table, wait_seconds=0.0)
    h.service.ledger = SeenMeansDoneLedger(h.service.ledger._client, billing_table, clock=h.clock)  # type: ignore[attr-defined]
    h.service.one_write_path = False
    # Slow the commit (half a second) so concurrent duplicates meet the live lease even on a loaded machine
    h.repository.before_write = lambda _: time.sleep(0.5)
    _, early_acks, _, _ = run_burst(h, 5, 16)
    assert early_acks > 0
