"""The subscription projection on moto: watermark-conditional writes and the partition read."""

from __future__ import annotations

import boto3

from tollgate.adapters.dynamodb.subscription_repository import DynamoSubscriptionRepository
from tollgate.domain.subscriptions import StateWrite, Watermark, WriteOutcome


def sub_write(created: int, status: str, *, event_id: str = "evt_a", rank: int = 1, sub: str = "sub_1") -> StateWrite:
    return StateWrite(
        customer_id="cus_1",
        sort_key=f"SUBSCRIPTION#{sub}",
        aspect="subscription",
        fields={"status": status, "price_id": "price_1", "quantity": 2, "current_period_end": created + 100},
        watermark=Watermark(created, rank, event_id),
    )


def test_newer_applies_older_is_stale_same_second_is_a_tie(billing_table: str) -> None:
    repo = DynamoSubscriptionRepository(boto3.client("dynamodb"), billing_table)
    # Given a state at second 100
    assert repo.write_if_newer(sub_write(100, "active")).outcome is WriteOutcome.APPLIED
    # When an older snapshot, a same-second one, the same write again and a newer one arrive
    older = repo.write_if_newer(sub_write(99, "incomplete", event_id="evt_0"))
    tie = repo.write_if_newer(sub_write(100, "past_due", event_id="evt_b"))
    again = repo.write_if_newer(sub_write(100, "active"))
    newer = repo.write_if_newer(sub_write(101, "canceled", event_id="evt_c"))
    # Then only the newer one changed the state, and the caller learns why the others did not
    assert (older.outcome, tie.outcome, again.outcome) == (
        WriteOutcome.STALE,
        WriteOutcome.TIE,
        WriteOutcome.ALREADY_APPLIED,
    )
    assert newer.outcome is WriteOutcome.APPLIED
    assert newer.previous["status"] == "active"
    assert repo.current_for_customer("cus_1").status == "canceled"  # type: ignore[union-attr]


def test_a_fetched_object_settles_a_tie_but_not_a_later_second(billing_table: str) -> None:
    repo = DynamoSubscriptionRepository(boto3.client("dynamodb"), billing_table)
    repo.write_if_newer(sub_write(100, "active"))
    # When the object fetched after a tie at second 100 is written
    fetched = repo.write_if_newer(sub_write(100, "past_due", event_id="evt_b", rank=Watermark.FETCHED))
    # Then it replaces the snapshot of that second; a fetch for an older second does not
    assert fetched.outcome is WriteOutcome.APPLIED
    assert repo.write_if_newer(sub_write(99, "active", rank=Watermark.FETCHED)).outcome is WriteOutcome.STALE
    assert repo.current_for_customer("cus_1").status == "past_due"  # type: ignore[union-attr]


def test_current_for_customer_prefers_the_live_subscription_and_joins_user_and_features(billing_table: str) -> None:
    client = boto3.client("dynamodb")
    repo = DynamoSubscriptionRepository(client, billing_table)
    # Given an old canceled subscription, a live one, the user row and the entitlements
    repo.write_if_newer(sub_write(100, "canceled", sub="sub_old"))
    repo.write_if_newer(sub_write(90, "active", sub="sub_new"))
    client.put_item(
        TableName=billing_table, Item={"pk": {"S": "CUSTOMER#cus_1"}, "sk": {"S": "USER"}, "user_id": {"S": "u1"}}
    )
    repo.write_if_newer(
        StateWrite("cus_1", "ENTITLEMENTS", "entitlements", {"features": ("pro", "api")}, Watermark(100, 1, "evt_e"))
    )
    # When reading the customer's current subscription
    current = repo.current_for_customer("cus_1")
    # Then the live one wins, with the user and the features attached
    assert current is not None
    assert (current.subscription_id, current.user_id, current.features) == ("sub_new", "u1", ("pro", "api"))
    assert len(repo.for_customer("cus_1")) == 2
    assert repo.current_for_customer("cus_unknown") is None


def test_current_for_customer_prefers_a_subscription_that_grants_access_now(billing_table: str) -> None:
    now = 1_800_000_000
    repo = DynamoSubscriptionRepository(boto3.client("dynamodb"), billing_table, clock=lambda: now)
    # Given an "active" subscription whose scheduled cancellation took effect an hour ago (its deletion event not
    # yet in), and a newer one that is past_due, its renewal failed a day ago (inside the 7-day grace)
    ended = StateWrite(
        "cus_1",
        "SUBSCRIPTION#sub_ended",
        "subscription",
        {"status": "active", "cancel_at_period_end": True, "current_period_end": now - 3600},
        Watermark(now - 7200, 1, "evt_x"),
    )
    in_grace = StateWrite(
        "cus_1",
        "SUBSCRIPTION#sub_grace",
        "subscription",
        {"status": "past_due", "current_period_start": now - 86_400, "current_period_end": now - 3601 + 30 * 86_400},
        Watermark(now - 60, 1, "evt_y"),
    )
    repo.write_if_newer(ended)
    repo.write_if_newer(in_grace)
    # When reading the current subscription / Then it is the one that still grants access, not the better status
    current = repo.current_for_customer("cus_1")
    assert current is not None
    assert current.subscription_id == "sub_grace"
