"""POST /billing/subscription/cancel and /resume through the real handler, with fakes behind the ports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.api_world import Invoke
from tests.unit.api.fakes import World, subscription
from tollgate.domain.cancellation import LiveSubscription

ALICE = {"sub": "user-alice"}
BOB = {"sub": "user-bob"}
PERIOD_END = 1_792_592_000


def live(customer_id: str = "cus_alice", **overrides: Any) -> LiveSubscription:
    values: dict[str, Any] = {
        "id": "sub_" + customer_id.removeprefix("cus_"),
        "customer_id": customer_id,
        "status": "active",
        "cancel_at_period_end": False,
        "cancel_at": None,
        "current_period_end": PERIOD_END,
    }
    values.update(overrides)
    return LiveSubscription(**values)


def subscribed(world: World, user: str, customer_id: str, **live_overrides: Any) -> None:
    world.directory.link(user, customer_id, subscribed=True)
    world.subscriptions.states[customer_id] = subscription(customer_id, "active")
    sub = live(customer_id, **live_overrides)
    world.cancellation_gateway.live[sub.id] = sub


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_cancel_asks_stripe_for_cancel_at_period_end_on_the_callers_own_subscription(
    portal_api: Invoke, world: World
) -> None:
    # Given Alice and Bob, each with an active subscription
    subscribed(world, "user-alice", "cus_alice")
    subscribed(world, "user-bob", "cus_bob")
    # When Alice cancels (twice: a retry)
    first = portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    second = portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    # Then 202, and Stripe got one logical update of her subscription only, under one idempotency key
    assert first["statusCode"] == second["statusCode"] == 202
    assert body_of(first) == {
        "subscription_id": "sub_alice",
        "cancel_at_period_end": True,
        "current_period_end": PERIOD_END,
        "cancel_at": None,
        "status": "active",
        "changed": True,
    }
    updates = world.cancellation_gateway.updates
    assert {u["id"] for u in updates} == {"sub_alice"}
    assert [u["params"] for u in updates] == [{"cancel_at_period_end": True}] * 2
    assert len({u["key"] for u in updates}) == 1
    # And the projection is untouched (the webhook changes it)
    assert world.subscriptions.states["cus_alice"].cancel_at_period_end is False


def test_cancel_when_stripe_already_has_it_sends_nothing(portal_api: Invoke, world: World) -> None:
    subscribed(world, "user-alice", "cus_alice", cancel_at_period_end=True, cancel_at=PERIOD_END)
    response = portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    assert response["statusCode"] == 202
    assert body_of(response)["changed"] is False
    assert world.cancellation_gateway.updates == []


def test_resume_clears_the_scheduled_cancellation(portal_api: Invoke, world: World) -> None:
    subscribed(world, "user-alice", "cus_alice", cancel_at_period_end=True, cancel_at=PERIOD_END)
    response = portal_api("POST", "/billing/subscription/resume", claims=ALICE)
    assert response["statusCode"] == 202
    assert body_of(response)["cancel_at_period_end"] is False
    assert [u["params"] for u in world.cancellation_gateway.updates] == [{"cancel_at_period_end": False}]


def test_resume_of_a_fixed_date_cancellation_unsets_cancel_at(portal_api: Invoke, world: World) -> None:
    subscribed(world, "user-alice", "cus_alice", cancel_at=PERIOD_END - 86_400)
    portal_api("POST", "/billing/subscription/resume", claims=ALICE)
    assert [u["params"] for u in world.cancellation_gateway.updates] == [{"cancel_at": ""}]


def test_resume_without_a_scheduled_cancellation_sends_nothing(portal_api: Invoke, world: World) -> None:
    subscribed(world, "user-alice", "cus_alice")
    response = portal_api("POST", "/billing/subscription/resume", claims=ALICE)
    assert (response["statusCode"], body_of(response)["changed"]) == (202, False)
    assert world.cancellation_gateway.updates == []


def test_cancel_then_resume_use_different_keys(portal_api: Invoke, world: World) -> None:
    # Control for a key that ignores the operation: the resume would replay the cancel's stored answer
    subscribed(world, "user-alice", "cus_alice")
    portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    world.cancellation_gateway.live["sub_alice"] = live(cancel_at_period_end=True, cancel_at=PERIOD_END)
    portal_api("POST", "/billing/subscription/resume", claims=ALICE)
    keys = [u["key"] for u in world.cancellation_gateway.updates]
    assert len(keys) == 2
    assert len(set(keys)) == 2


def test_a_user_without_a_customer_gets_404(portal_api: Invoke, world: World) -> None:
    response = portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    assert response["statusCode"] == 404


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired"])
def test_an_ended_subscription_gets_409(portal_api: Invoke, world: World, status: str) -> None:
    subscribed(world, "user-alice", "cus_alice")
    world.subscriptions.states["cus_alice"] = subscription("cus_alice", status)
    response = portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    assert response["statusCode"] == 409
    assert world.cancellation_gateway.updates == []


def test_a_projection_pointing_at_another_customers_subscription_is_refused(portal_api: Invoke, world: World) -> None:
    # Given a projection (corrupted) naming Bob's subscription under Alice's customer
    subscribed(world, "user-bob", "cus_bob")
    world.directory.link("user-alice", "cus_alice")
    world.subscriptions.states["cus_alice"] = subscription("cus_alice", "active", subscription_id="sub_bob")
    # When Alice cancels / Then refused: Stripe says the subscription is Bob's customer's
    response = portal_api("POST", "/billing/subscription/cancel", claims=ALICE)
    assert response["statusCode"] == 409
    assert world.cancellation_gateway.updates == []


def test_a_period_that_already_ended_cannot_be_resumed(portal_api: Invoke, world: World) -> None:
    subscribed(world, "user-alice", "cus_alice", cancel_at_period_end=True, cancel_at=int(world.now) - 60)
    response = portal_api("POST", "/billing/subscription/resume", claims=ALICE)
    assert response["statusCode"] == 409
    assert "checkout" in body_of(response)["error"]["reason"]


def test_a_body_is_not_needed_and_the_client_key_is_honoured(portal_api: Invoke, world: World) -> None:
    subscribed(world, "user-alice", "cus_alice")
    portal_api("POST", "/billing/subscription/cancel", claims=ALICE, headers={"Idempotency-Key": "click-1"})
    portal_api("POST", "/billing/subscription/cancel", claims=ALICE, headers={"Idempotency-Key": "click-2"})
    assert len({u["key"] for u in world.cancellation_gateway.updates}) == 2
    bad = portal_api("POST", "/billing/subscription/cancel", claims=ALICE, headers={"Idempotency-Key": "a b"})
    assert bad["statusCode"] == 400
