"""POST /checkout/sessions and GET /plans through the real handler, with fakes behind the ports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.api_world import Invoke
from tests.unit.api.fakes import CANCEL_URL, SUCCESS_URL, World, subscription
from tollgate.services.checkout import DERIVED_KEY_WINDOW_SECONDS

ALICE = {"sub": "user-alice", "email": "alice@example.test", "email_verified": True}


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_a_new_user_gets_a_session_for_the_catalog_price_and_exactly_two_stripe_calls(
    checkout_api: Invoke, world: World
) -> None:
    # Given a signed-in user with no Stripe customer yet
    # When they ask for the starter plan
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter", "quantity": 1}, claims=ALICE)
    # Then they get only the session id and URL
    assert response["statusCode"] == 200
    assert set(body_of(response)) == {"id", "url"}
    # And Stripe saw one customer creation (verified email, user id in metadata) and one session
    assert world.customers.calls == [
        {"user_id": "user-alice", "email": "alice@example.test", "key": "customer:user-alice:0"}
    ]
    [call] = world.sessions.checkout_calls
    customer_id = world.directory.customer_for_user("user-alice")
    assert call["params"] == {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": "user-alice",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "metadata": {"app_user_id": "user-alice", "plan": "starter"},
        "subscription_data": {"metadata": {"app_user_id": "user-alice", "plan": "starter"}, "trial_period_days": 14},
        "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
        "allow_promotion_codes": True,
    }
    assert call["version"] is None


def test_a_returning_user_costs_one_stripe_call(checkout_api: Invoke, world: World) -> None:
    # Given a user already mapped to a customer, without a subscription
    world.directory.link("user-alice", "cus_alice")
    # When they start a checkout
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "team", "quantity": 3}, claims=ALICE)
    # Then only the session is created, for their own customer
    assert response["statusCode"] == 200
    assert world.customers.calls == []
    [call] = world.sessions.checkout_calls
    assert call["params"]["customer"] == "cus_alice"
    assert call["params"]["line_items"] == [{"price": "price_team_monthly", "quantity": 3}]
    assert "trial_period_days" not in call["params"]["subscription_data"]


def test_an_unverified_email_never_reaches_stripe(checkout_api: Invoke, world: World) -> None:
    claims = {"sub": "user-eve", "email": "victim@example.test", "email_verified": False}
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=claims)
    assert world.customers.calls[0]["email"] is None


@pytest.mark.parametrize("status", ["active", "trialing", "past_due"])
def test_a_user_whose_subscription_grants_access_gets_409(checkout_api: Invoke, world: World, status: str) -> None:
    # Given a user whose subscription grants access (past_due within the grace period)
    world.directory.link("user-alice", "cus_alice")
    world.subscriptions.states["cus_alice"] = subscription(
        "cus_alice", status, current_period_start=int(world.now) - 3600
    )
    # When they try to buy again
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    # Then they are told to use the portal, and Stripe is not called
    assert response["statusCode"] == 409
    assert "portal" in body_of(response)["error"]["reason"]
    assert world.sessions.checkout_calls == []


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired"])
def test_a_user_whose_subscription_ended_may_subscribe_again(checkout_api: Invoke, world: World, status: str) -> None:
    world.directory.link("user-alice", "cus_alice")
    world.subscriptions.states["cus_alice"] = subscription("cus_alice", status)
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    assert response["statusCode"] == 200


@pytest.mark.parametrize(("status", "remedy"), [("unpaid", "pay it"), ("incomplete", "pay it"), ("paused", "portal")])
def test_a_subscription_stripe_may_still_collect_on_blocks_a_second_one(
    checkout_api: Invoke, world: World, status: str, remedy: str
) -> None:
    # Given a user whose subscription is denied access, yet Stripe may still collect on it (an open invoice)
    world.directory.link("user-alice", "cus_alice")
    world.subscriptions.states["cus_alice"] = subscription("cus_alice", status)
    # When they try to start a second subscription
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    # Then 409 points at the invoice to pay (or the portal), and Stripe is not called
    assert response["statusCode"] == 409
    assert remedy in body_of(response)["error"]["reason"]
    assert "portal" in body_of(response)["error"]["reason"]
    assert world.sessions.checkout_calls == []


def test_a_scheduled_cancellation_that_took_effect_no_longer_blocks(checkout_api: Invoke, world: World) -> None:
    # Given an active subscription whose cancel_at already passed (its deletion event not in yet)
    world.directory.link("user-alice", "cus_alice")
    world.subscriptions.states["cus_alice"] = subscription("cus_alice", "active", cancel_at=int(world.now) - 60)
    # When they subscribe again / Then it is not a live subscription any more
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    assert response["statusCode"] == 200


def trial_days_sent(world: World) -> object:
    return world.sessions.checkout_calls[-1]["params"]["subscription_data"].get("trial_period_days")


@pytest.mark.parametrize(("policy", "trial"), [("once_per_user", None), ("always", 14), ("never", None)])
def test_a_user_who_had_a_subscription_gets_the_trial_only_as_the_policy_says(
    checkout_api: Invoke, world: World, policy: str, trial: object
) -> None:
    # Given a user whose earlier subscription (linked by its webhook) was canceled
    world.trial_policy = policy
    world.directory.link("user-alice", "cus_alice", subscribed=True)
    world.subscriptions.states["cus_alice"] = subscription("cus_alice", "canceled")
    # When they subscribe again to a plan with a 14-day trial
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    # Then the trial is there only under "always"
    assert response["statusCode"] == 200
    assert trial_days_sent(world) == trial


@pytest.mark.parametrize(("policy", "trial"), [("once_per_user", 14), ("always", 14), ("never", None)])
def test_a_new_user_gets_the_trial_unless_the_policy_is_never(
    checkout_api: Invoke, world: World, policy: str, trial: object
) -> None:
    world.trial_policy = policy
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    assert response["statusCode"] == 200
    assert trial_days_sent(world) == trial


def test_the_trial_record_survives_a_deleted_stripe_customer(checkout_api: Invoke, world: World) -> None:
    # Given a user who had a subscription, then Stripe deleted their customer (and its subscriptions with it)
    world.directory.link("user-alice", "cus_alice", subscribed=True)
    world.directory.mark_deleted("cus_alice")
    # When they subscribe again: a new customer, with no subscription of its own
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    # Then no second trial (the record is the user's, not the customer's)
    assert response["statusCode"] == 200
    assert world.sessions.checkout_calls[-1]["params"]["customer"] != "cus_alice"
    assert trial_days_sent(world) is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"plan": "enterprise"}, 400),
        ({"plan": "team", "quantity": 1}, 400),  # below the plan's minimum
        ({"plan": "team", "quantity": 51}, 400),
        ({"plan": "starter", "quantity": 0}, 422),
        ({"plan": "starter", "quantity": "1"}, 422),
        ({"plan": "starter", "quantity": 1.5}, 422),
        ({"plan": "starter", "price": "price_team_yearly"}, 422),
        ({"plan": "starter", "success_url": "https://evil.example"}, 422),
        ({"plan": "starter", "customer": "cus_bob"}, 422),
        ({}, 422),
        ("not json", 400),  # not JSON at all: refused before validation (tollgate.domain.json_documents)
    ],
)
def test_invalid_bodies_are_refused_before_stripe(checkout_api: Invoke, world: World, body: Any, status: int) -> None:
    response = checkout_api("POST", "/checkout/sessions", body=body, claims=ALICE)
    assert response["statusCode"] == status
    assert world.sessions.checkout_calls == []
    assert world.customers.calls == []


def test_without_a_verified_identity_the_answer_is_401(checkout_api: Invoke, world: World) -> None:
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"})
    assert response["statusCode"] == 401
    assert world.sessions.checkout_calls == []


def test_the_client_idempotency_key_is_honoured_and_scoped_to_the_user(checkout_api: Invoke, world: World) -> None:
    # Given two users who send the same Idempotency-Key
    headers = {"Idempotency-Key": "order-7"}
    bob = {"sub": "user-bob"}
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE, headers=headers)
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE, headers=headers)
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=bob, headers=headers)
    checkout_api("POST", "/checkout/sessions", body={"plan": "team", "quantity": 2}, claims=ALICE, headers=headers)
    keys = [c["key"] for c in world.sessions.checkout_calls]
    # Then a retry by the same user reuses the key; another user or another body never shares it
    assert keys[0] == keys[1]
    assert len({keys[0], keys[2], keys[3]}) == 3
    assert all(k.startswith("checkout:") and len(k) <= 255 for k in keys)


def test_a_malformed_idempotency_key_is_a_400(checkout_api: Invoke, world: World) -> None:
    response = checkout_api(
        "POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE, headers={"Idempotency-Key": "a b"}
    )
    assert response["statusCode"] == 400


def test_without_a_client_key_a_double_click_reuses_the_derived_key(checkout_api: Invoke, world: World) -> None:
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    world.now += 600  # a later, separate attempt
    checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    keys = [c["key"] for c in world.sessions.checkout_calls]
    assert keys[0] == keys[1] != keys[2]


class FixedBucketWindows:
    """The naive derivation: windows aligned to the clock (``now // window``), not to the first request."""

    def first_seen(self, fingerprint: str, now: int, window_seconds: int) -> int:
        return now - now % window_seconds


def double_click_across_a_boundary(checkout_api: Invoke, world: World) -> list[str]:
    boundary = (int(world.now) // DERIVED_KEY_WINDOW_SECONDS + 1) * DERIVED_KEY_WINDOW_SECONDS
    for at in (boundary - 0.2, boundary + 0.2):
        world.now = at
        checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    return [c["key"] for c in world.sessions.checkout_calls]


def test_a_double_click_straddling_a_clock_boundary_still_opens_one_session(checkout_api: Invoke, world: World) -> None:
    # Given a user who double-clicks 0.4 s apart, the clicks falling either side of a multiple of the window
    keys = double_click_across_a_boundary(checkout_api, world)
    # Then both requests carry the same idempotency key (Stripe replays the first session)
    assert keys[0] == keys[1]


def test_control_clock_aligned_windows_split_that_double_click(checkout_api: Invoke, world: World) -> None:
    # Given the naive derivation from fixed clock buckets
    world.windows = FixedBucketWindows()
    # When the same double click straddles the boundary
    keys = double_click_across_a_boundary(checkout_api, world)
    # Then it would open two sessions: the harness tells the designs apart
    assert keys[0] != keys[1]


def test_a_pricing_plan_uses_checkout_items_and_the_preview_version(checkout_api: Invoke, world: World) -> None:
    checkout_api("POST", "/checkout/sessions", body={"plan": "usage-pro"}, claims=ALICE)
    [call] = world.sessions.checkout_calls
    assert "line_items" not in call["params"]
    assert call["params"]["checkout_items"] == [
        {
            "type": "pricing_plan_subscription_item",
            "pricing_plan_subscription_item": {"pricing_plan": "bpp_test_usage_pro"},
        }
    ]
    assert call["version"].endswith(".preview;checkout_product_catalog_preview=v1")


def test_get_plans_lists_the_resolved_catalog_publicly_and_cacheably(checkout_api: Invoke) -> None:
    # When the pricing page asks for the plans (no JWT)
    response = checkout_api("GET", "/plans")
    # Then it gets display data resolved from Stripe, and may cache it
    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == "public, max-age=300"
    plans = body_of(response)["plans"]
    assert [p["plan"] for p in plans] == ["starter", "team", "usage-pro"]
    assert plans[0] == {
        "plan": "starter",
        "name": "Starter",
        "amount": 900,
        "currency": "usd",
        "interval": "month",
        "interval_count": 1,
        "trial_days": 14,
        "min_quantity": 1,
        "max_quantity": 1,
    }
    assert "price" not in json.dumps(plans)  # no Stripe ids to tempt a client into sending them back


def test_a_checkout_for_a_customer_stripe_deleted_replaces_it_and_succeeds(checkout_api: Invoke, world: World) -> None:
    # Given the user's mapped customer no longer exists in Stripe (webhook not applied yet)
    world.directory.link("user-alice", "cus_gone")
    world.sessions.deleted_customers.add("cus_gone")
    # When they check out
    response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims=ALICE)
    # Then the session opens for a new customer created under the next generation, with a key of its own
    assert response["statusCode"] == 200, response["body"]
    first, second = world.sessions.checkout_calls
    new = world.directory.customer_for_user("user-alice")
    assert (first["params"]["customer"], second["params"]["customer"]) == ("cus_gone", new)
    assert first["key"] != second["key"]
    assert [c["key"] for c in world.customers.calls] == ["customer:user-alice:1"]
    assert world.directory.deleted == {"cus_gone"}
