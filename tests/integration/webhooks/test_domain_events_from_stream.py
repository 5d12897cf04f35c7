"""Domain events come from the table's stream: each committed write carries its transition (old and new image) or
its announcements, so a crash after the commit loses nothing and a retry repeats nothing; the publisher's stream
mapping (partial batch responses, bisect, bounded retries, an on-failure destination) republishes only what failed
and isolates a poison record."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest

from devstack.stream_poller import StreamMapping
from tests.integration.webhooks.harness import (
    Crash,
    Harness,
    RecordingBus,
    build_harness,
    load_event,
    subscription_event_at,
)
from tests.support.dynamodb_size import item_size
from tests.support.streams import handler_for, publisher_poller, relay_for, template_mapping
from tollgate import errors
from tollgate.domain.changes import transition_fields
from tollgate.domain.events import transition_event
from tollgate.domain.subscriptions import StateWrite, WriteOutcome, WriteResult
from tollgate.services.subscription_writes import Committed, SubscriptionWriter

CUSTOMER = "cus_TestProjection01"


@pytest.fixture
def h(billing_table: str) -> Harness:
    return build_harness(boto3.client("dynamodb"), billing_table)


def sub_event(
    eid: str, created: int, status: str, sub: str = "sub_1TestProjection0001", **changes: Any
) -> dict[str, Any]:
    event = subscription_event_at("customer.subscription.updated", eid, created)
    event["data"]["object"].update(id=sub, status=status, **changes)
    return event


def announced(bus: RecordingBus) -> list[tuple[str, str]]:
    return [(e.stripe_event_id, e.name) for e in bus.events]


def subscription_item(billing_table: str, sub: str = "sub_1TestProjection0001") -> dict[str, Any]:
    key = {"pk": {"S": f"CUSTOMER#{CUSTOMER}"}, "sk": {"S": f"SUBSCRIPTION#{sub}"}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=billing_table, Key=key)["Item"]
    return item


def crash_after_the_commit(h: Harness) -> None:
    """The next write commits, then the invocation ends (a timeout) before the webhook answers."""
    original = h.repository.write_if_newer

    def write_then_crash(write: StateWrite, **kwargs: Any) -> WriteResult:
        h.repository.write_if_newer = original  # type: ignore[method-assign]
        original(write, **kwargs)
        raise Crash

    h.repository.write_if_newer = write_then_crash  # type: ignore[method-assign]


def test_a_crash_right_after_the_commit_loses_no_domain_event(h: Harness) -> None:
    # Given an activation whose attempt died right after its write committed
    crash_after_the_commit(h)
    with pytest.raises(Crash):
        h.deliver(sub_event("evt_act", 100, "active"))
    # And a newer event of the subscription commits before Stripe's retry
    assert h.deliver(sub_event("evt_due", 200, "past_due")).result == "applied"
    # When Stripe retries the activation
    assert h.deliver(sub_event("evt_act", 100, "active")).result == "stale"
    # Then the stream carried both changes: each announced once, as it happened
    assert announced(h.bus) == [("evt_act", "subscription.activated"), ("evt_due", "subscription.past_due")]
    assert [e.data["previous_status"] for e in h.bus.events] == [None, "active"]


class PublishAfterCommit(SubscriptionWriter):
    """The previous design without its outbox: the attempt publishes its transition after the write it made."""

    bus: RecordingBus

    def write(self, write: StateWrite, effects: Any, announcements: Any = ()) -> Committed:
        committed = super().write(write, effects, announcements)
        if committed.result.outcome is WriteOutcome.APPLIED:
            before, after = transition_fields(committed.result.previous), transition_fields(dict(write.fields))
            event = transition_event(write.watermark.event_id, write.watermark.created, "c", "s", before, after)
            self.bus.publish([event] if event else [])
        return committed


def test_control_publishing_from_the_attempt_loses_the_crashed_change(h: Harness) -> None:
    # Given the webhook publishing from the attempt instead of the stream
    h.publish_each = False
    writer = PublishAfterCommit(h.repository, h.directory, h.meter_errors)
    writer.bus = h.bus
    h.service.writer = writer
    crash_after_the_commit(h)
    with pytest.raises(Crash):
        h.deliver(sub_event("evt_act", 100, "active"))  # committed, died before it could publish
    h.deliver(sub_event("evt_due", 200, "past_due"))
    h.deliver(sub_event("evt_act", 100, "active"))  # stale: the retry learns nothing left to publish
    # Then the activation was never announced
    assert announced(h.bus) == [("evt_due", "subscription.past_due")]


def test_consecutive_changes_are_each_announced_against_the_state_before_them(h: Harness) -> None:
    for i, status in enumerate(("active", "past_due", "unpaid"), start=1):
        h.deliver(sub_event(f"evt_{i}", 100 * i, status))
    assert announced(h.bus) == [
        ("evt_1", "subscription.activated"),
        ("evt_2", "subscription.past_due"),
        ("evt_3", "subscription.unpaid"),
    ]
    assert [e.data["previous_status"] for e in h.bus.events] == [None, "active", "past_due"]


def test_a_redelivery_that_ties_with_a_later_event_of_its_second_is_a_duplicate(h: Harness) -> None:
    # Given E applied, then F of the same second (a tie: F fetched the subscription and wrote it)
    h.deliver(sub_event("evt_e", 100, "active"))
    h.stripe.objects["sub_1TestProjection0001"] = sub_event("x", 100, "past_due")["data"]["object"]
    assert h.deliver(sub_event("evt_f", 100, "past_due")).result == "applied"
    fetches = h.stripe.fetches
    # When Stripe redelivers E
    outcome = h.deliver(sub_event("evt_e", 100, "active"))
    # Then it is a duplicate: no fetch, no second write under E, nothing announced again
    assert outcome.result == "duplicate"
    assert h.stripe.fetches == fetches
    assert h.repository.applied == ["evt_e", "evt_f"]
    assert [n for _, n in announced(h.bus)] == ["subscription.activated", "subscription.past_due"]


def test_control_without_the_seconds_applied_events_the_tied_redelivery_applies_again(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tollgate.services.subscription_writes.applied_in_second", lambda item: [])
    h.deliver(sub_event("evt_e", 100, "active"))
    h.stripe.objects["sub_1TestProjection0001"] = sub_event("x", 100, "past_due")["data"]["object"]
    h.deliver(sub_event("evt_f", 100, "past_due"))
    h.deliver(sub_event("evt_e", 100, "active"))
    assert h.repository.applied.count("evt_e") == 2


def test_an_invoice_payment_rides_in_its_invoices_write_and_a_late_one_for_an_older_invoice_too(h: Harness) -> None:
    # Given this month's invoice paid, then a late event about last month's invoice paid
    this_month = load_event("invoice.payment_failed")
    this_month.update(id="evt_inv_new", type="invoice.paid", created=2_000)
    this_month["data"]["object"].update(id="in_new", status="paid", created=2_000)
    last_month = load_event("invoice.payment_failed")
    last_month.update(id="evt_inv_old", type="invoice.paid", created=2_100)
    last_month["data"]["object"].update(id="in_old", status="paid", created=1_000)
    calls = h.repository.applied.copy()
    # When both arrive (the late one after), each once, then each again
    for event in (this_month, last_month, this_month, last_month):
        h.deliver(event)
    # Then each payment is announced once, and each committed in its own invoice's one write
    assert sorted(announced(h.bus)) == [("evt_inv_new", "payment.succeeded"), ("evt_inv_old", "payment.succeeded")]
    assert h.repository.applied == [*calls, "evt_inv_new", "evt_inv_old"]


def test_writes_that_announce_nothing_keep_the_item_within_one_write_unit(h: Harness, billing_table: str) -> None:
    h.deliver(sub_event("evt_0", 100, "active"))
    for i in range(1, 21):
        h.deliver(sub_event(f"evt_{i}", 100 + i, "active"))
    assert announced(h.bus) == [("evt_0", "subscription.activated")]
    item = subscription_item(billing_table)
    assert item_size(item) < 1024, item_size(item)


# ----------------------------------------------------------------------------------------------- the stream mapping
class FlakyBus(RecordingBus):
    """Refuses the n-th PutEvents request once (the bus unreachable), then accepts everything."""

    def __init__(self, fail_request: int) -> None:
        super().__init__()
        self.requests = 0
        self.fail_request = fail_request

    def publish(self, events: Any) -> list[str]:
        self.requests += 1
        if self.requests == self.fail_request:
            raise errors.PersistenceUnavailable()
        return super().publish(events)


def activate(h: Harness, subscriptions: int) -> None:
    h.publish_each = False
    for i in range(subscriptions):
        h.deliver(sub_event(f"evt_a{i:03d}", 100, "active", sub=f"sub_batch{i:03d}"))


def test_a_failure_mid_batch_republishes_only_the_records_that_failed(h: Harness, billing_table: str) -> None:
    # Given 25 activations in one stream batch, and a bus that refuses the second request (events 11-20)
    activate(h, 25)
    bus = FlakyBus(fail_request=2)
    poller = publisher_poller(billing_table, bus)
    # When the publisher runs on the stream
    poller.poll()
    # Then every activation is on the bus exactly once: the retry started at the first unpublished record
    counts = Counter(e.id for e in bus.events)
    assert len(counts) == 25
    assert set(counts.values()) == {1}
    assert poller.stats.invocations == 2


def test_control_without_partial_batch_responses_the_published_siblings_repeat(h: Harness, billing_table: str) -> None:
    activate(h, 25)
    bus = FlakyBus(fail_request=2)
    naive = handler_for(relay_for(bus))

    def fail_whole_batch(event: dict[str, Any]) -> dict[str, Any]:
        answer = naive(event)
        if answer["batchItemFailures"]:
            raise RuntimeError("some records failed")  # no partial response: the function just fails
        return answer

    mapping = template_mapping(FunctionResponseTypes=[], BisectBatchOnFunctionError=False)
    publisher_poller(billing_table, bus, mapping=mapping, invoke=fail_whole_batch).poll()
    counts = Counter(e.id for e in bus.events)
    assert len(counts) == 25
    assert max(counts.values()) == 2  # the first ten were published twice


def plant_poison(billing_table: str) -> None:
    """A subscription item whose announcements cannot be read: the publisher can never publish that record."""
    boto3.client("dynamodb").put_item(
        TableName=billing_table,
        Item={
            "pk": {"S": f"CUSTOMER#{CUSTOMER}"},
            "sk": {"S": "SUBSCRIPTION#sub_poison"},
            "announcements": {"S": "not json"},
        },
    )


def test_a_poison_record_reaches_the_failure_destination_and_its_siblings_are_published_once(
    h: Harness, billing_table: str
) -> None:
    # Given a batch of activations with one record the publisher can never read in the middle
    activate(h, 6)
    plant_poison(billing_table)
    for i in range(6, 12):
        h.deliver(sub_event(f"evt_a{i:03d}", 100, "active", sub=f"sub_batch{i:03d}"))
    mapping = template_mapping()
    poller = publisher_poller(billing_table, h.bus, mapping=mapping)
    # When the publisher runs
    poller.poll()
    # Then each sibling was published exactly once, and the poison record alone went to the on-failure destination
    counts = Counter(e.id for e in h.bus.events)
    assert len(counts) == 12
    assert set(counts.values()) == {1}
    assert poller.stats.sent_to_failure_destination == 1
    [message] = poller.stats.failure_messages
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["requestContext"]["approximateInvokeCount"] == mapping.maximum_retry_attempts + 1


def test_control_without_partial_batch_responses_a_poison_record_republishes_its_siblings(
    h: Harness, billing_table: str
) -> None:
    activate(h, 6)
    plant_poison(billing_table)
    for i in range(6, 12):
        h.deliver(sub_event(f"evt_a{i:03d}", 100, "active", sub=f"sub_batch{i:03d}"))
    naive = handler_for(relay_for(h.bus))

    def fail_whole_batch(event: dict[str, Any]) -> dict[str, Any]:
        if naive(event)["batchItemFailures"]:
            raise RuntimeError("some records failed")
        return {}

    mapping = StreamMapping(batch_size=100, maximum_retry_attempts=2, bisect_on_error=False)
    publisher_poller(billing_table, h.bus, mapping=mapping, invoke=fail_whole_batch).poll()
    counts = Counter(e.id for e in h.bus.events)
    assert max(counts.values()) == 3  # the siblings before the poison: once per attempt
