"""The transition outbox: a subscription change committed by an attempt that died before publishing is announced
later, even when a newer event of the same subscription commits first; nothing is announced twice by attempts
that are still alive; and entries that announce nothing do not pile up on the item."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.integration.webhooks.harness import Crash, Harness, build_harness, load_event
from tests.support.dynamodb_size import item_size
from tollgate import errors
from tollgate.adapters.dynamodb.subscription_repository import from_dynamo
from tollgate.domain import outbox
from tollgate.domain.outbox import MAX_SETTLED_ENTRIES

CUSTOMER = "cus_TestProjection01"


@pytest.fixture
def h(billing_table: str) -> Harness:
    return build_harness(boto3.client("dynamodb"), billing_table)


def sub_event(
    eid: str, created: int, status: str, sub: str = "sub_1TestProjection0001", **changes: Any
) -> dict[str, Any]:
    event = load_event("customer.subscription.updated")
    event["id"], event["created"] = eid, created
    event["data"]["object"].update(id=sub, status=status, **changes)
    return event


def deliver_and_crash_before_publishing(h: Harness, event: dict[str, Any], remaining_ms: int = 3000) -> None:
    """The attempt commits the state, then its invocation ends (timeout) before the bus call returns."""
    original = h.service.writer.publisher.publish

    def crash(_: Any) -> None:
        raise Crash

    h.service.writer.publisher.publish = crash  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            h.deliver(event, remaining_ms=remaining_ms)
    finally:
        h.service.writer.publisher.publish = original  # type: ignore[method-assign]


def announced(h: Harness) -> list[tuple[str, str]]:
    return [(e.stripe_event_id, e.name) for e in h.bus.events]


def subscription_item(billing_table: str, sub: str = "sub_1TestProjection0001") -> dict[str, Any]:
    key = {"pk": {"S": f"CUSTOMER#{CUSTOMER}"}, "sk": {"S": f"SUBSCRIPTION#{sub}"}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=billing_table, Key=key)["Item"]
    return item


def entries(billing_table: str, sub: str = "sub_1TestProjection0001") -> list[str]:
    """The entries still waiting to be published (settled ones announce nothing)."""
    item = from_dynamo(subscription_item(billing_table, sub))
    return sorted(outbox.entry_attribute(p.event_id) for p in outbox.pending_in(item) if p.announcement())


def test_a_crashed_activation_is_announced_by_its_retry_after_a_newer_event_committed(
    h: Harness, billing_table: str
) -> None:
    # Given an activation committed by an attempt that died before publishing
    deliver_and_crash_before_publishing(h, sub_event("evt_act", 100, "active"))
    # And, while that attempt could still be running, a newer event of the subscription commits (past_due)
    h.clock.now += 1
    assert h.deliver(sub_event("evt_due", 200, "past_due")).result == "applied"
    # When Stripe retries the activation after the crashed invocation ended
    h.clock.now += 5
    retry = h.deliver(sub_event("evt_act", 100, "active"))
    # Then the retry is stale for the state, yet the activation it caused is announced, once, and the item's
    # outbox is empty again
    assert retry.result == "stale"
    assert sorted(announced(h)) == [("evt_act", "subscription.activated"), ("evt_due", "subscription.past_due")]
    assert entries(billing_table) == []
    assert h.deliver(sub_event("evt_act", 100, "active")).result == "stale"
    assert len(h.bus.events) == 2


def test_control_without_the_outbox_the_crashed_activation_is_lost(
    h: Harness, billing_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the outbox entries are never read back (what the product did before: only the writer knew the change)
    monkeypatch.setattr("tollgate.services.subscription_writes.pending_in", lambda item: [])
    deliver_and_crash_before_publishing(h, sub_event("evt_act", 100, "active"))
    h.clock.now += 1
    h.deliver(sub_event("evt_due", 200, "past_due"))
    h.clock.now += 5
    h.deliver(sub_event("evt_act", 100, "active"))
    # Then subscription.activated was never published
    assert announced(h) == [("evt_due", "subscription.past_due")]


def test_a_later_event_publishes_an_abandoned_transition_without_waiting_for_stripes_retry(h: Harness) -> None:
    # Given an activation whose attempt died before publishing, and its invocation is over
    deliver_and_crash_before_publishing(h, sub_event("evt_act", 100, "active"))
    h.clock.now += 5
    # When the next event of the subscription commits
    h.deliver(sub_event("evt_sched", 200, "active", cancel_at_period_end=True))
    # Then both changes are announced, in order, by that delivery; the activation's own retry adds nothing
    assert announced(h) == [("evt_act", "subscription.activated"), ("evt_sched", "subscription.cancellation_scheduled")]
    assert h.deliver(sub_event("evt_act", 100, "active")).result == "stale"
    assert len(h.bus.events) == 2


def test_a_later_event_leaves_an_entry_of_a_live_attempt_alone(h: Harness, billing_table: str) -> None:
    # Given an activation committed by an attempt that is still running (its invocation has 10 s left)
    deliver_and_crash_before_publishing(h, sub_event("evt_act", 100, "active"), remaining_ms=10_000)
    # When a newer event commits within those 10 s
    h.clock.now += 1
    h.deliver(sub_event("evt_due", 200, "past_due"))
    # Then it announces only its own change: the activation stays pending for its own attempt (or its retry)
    assert announced(h) == [("evt_due", "subscription.past_due")]
    assert entries(billing_table) == ["outbox#evt_act"]
    # And a retry while the attempt still runs is refused, after it ended it publishes
    with pytest.raises(errors.Conflict):
        h.deliver(sub_event("evt_act", 100, "active"))
    h.clock.now += 10
    h.deliver(sub_event("evt_act", 100, "active"))
    assert sorted(announced(h)) == [("evt_act", "subscription.activated"), ("evt_due", "subscription.past_due")]


def test_two_crashes_in_a_row_are_both_announced_by_the_next_write(h: Harness, billing_table: str) -> None:
    # Given two consecutive changes whose attempts both died before publishing
    deliver_and_crash_before_publishing(h, sub_event("evt_1", 100, "active"))
    deliver_and_crash_before_publishing(h, sub_event("evt_2", 200, "past_due"))
    assert entries(billing_table) == ["outbox#evt_1", "outbox#evt_2"]
    # When, after both ended, a third commits
    h.clock.now += 5
    h.deliver(sub_event("evt_3", 300, "unpaid"))
    # Then each change is announced once, as it happened (each against the state before it)
    assert announced(h) == [
        ("evt_1", "subscription.activated"),
        ("evt_2", "subscription.past_due"),
        ("evt_3", "subscription.unpaid"),
    ]
    assert [e.data["previous_status"] for e in h.bus.events] == [None, "active", "past_due"]
    assert entries(billing_table) == []


def test_a_crashed_leased_event_is_announced_after_a_newer_snapshot(h: Harness) -> None:
    # Given checkout.session.completed (leased: it fetches the subscription) died after committing the grant
    sub = load_event("customer.subscription.updated")["data"]["object"]
    h.stripe.objects[sub["id"]] = sub
    checkout = load_event("checkout.session.completed")
    deliver_and_crash_before_publishing(h, checkout)
    # And a newer snapshot of the subscription commits after the lease ended
    h.clock.now += 5
    h.deliver(sub_event("evt_sched", checkout["created"] + 100, "active", cancel_at_period_end=True))
    # When Stripe retries the checkout event
    assert h.deliver(checkout).result == "applied"
    # Then the grant was announced exactly once, under the checkout event's id
    assert [n for n in announced(h) if n[1] == "subscription.activated"] == [(checkout["id"], "subscription.activated")]


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
    assert [n for _, n in announced(h)] == ["subscription.activated", "subscription.past_due"]


def test_control_without_the_marker_the_tied_redelivery_applies_again(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the redelivery cannot see that its event left an entry on the item
    monkeypatch.setattr("tollgate.services.subscription_writes.entries_in", lambda item: {})
    monkeypatch.setattr("tollgate.services.webhook.entries_in", lambda item: {})
    h.deliver(sub_event("evt_e", 100, "active"))
    h.stripe.objects["sub_1TestProjection0001"] = sub_event("x", 100, "past_due")["data"]["object"]
    h.deliver(sub_event("evt_f", 100, "past_due"))
    h.deliver(sub_event("evt_e", 100, "active"))
    # Then the tie is settled by a second fetch-and-write under E
    assert h.repository.applied.count("evt_e") == 2


def test_writes_that_announce_nothing_do_not_pile_up_on_the_item(h: Harness, billing_table: str) -> None:
    # Given an active subscription, then 20 renewals that change nothing a domain event is about
    h.deliver(sub_event("evt_0", 100, "active"))
    for i in range(1, 21):
        h.deliver(sub_event(f"evt_{i}", 100 + i, "active"))
    # Then the item holds only a few settled entries, none pending, and one announcement was made
    item = subscription_item(billing_table)
    assert len([a for a in item if a.startswith(outbox.ENTRY_PREFIX)]) <= MAX_SETTLED_ENTRIES
    assert entries(billing_table) == []
    assert announced(h) == [("evt_0", "subscription.activated")]
    # And the item stays within one DynamoDB write unit (1 KB)
    assert item_size(item) < 1024, item_size(item)
