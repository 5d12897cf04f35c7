"""Per-user limit on session creation: 1,000 requests from one user in a minute let 10 through to Stripe."""

from __future__ import annotations

import boto3
import pytest

from tests.unit.api.conftest import Invoke
from tests.unit.api.fakes import AdmitAll, World
from tollgate import errors
from tollgate.rate_limit import DynamoRateLimiter


def flood(checkout_api: Invoke, portal_api: Invoke, world: World, user: str, requests: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    for i in range(requests):
        if i % 2:
            response = portal_api("POST", "/portal/sessions", claims={"sub": user})
        else:
            response = checkout_api("POST", "/checkout/sessions", body={"plan": "starter"}, claims={"sub": user})
        statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
        if response["statusCode"] == 429:
            assert 1 <= int(response["headers"]["Retry-After"]) <= 60
    return statuses


def test_one_user_flooding_gets_429_after_the_limit_and_others_are_unaffected(
    checkout_api: Invoke, portal_api: Invoke, world: World, billing_table: str
) -> None:
    # Given the DynamoDB limiter at the default 10 per minute, and a clock inside one minute
    world.limiter = DynamoRateLimiter(boto3.client("dynamodb"), billing_table, 10, clock=lambda: 1_790_000_010)
    world.directory.link("greedy", "cus_greedy")
    world.directory.link("polite", "cus_polite")
    # When one user fires 1,000 session requests
    statuses = flood(checkout_api, portal_api, world, "greedy", 1000)
    # Then 10 reach Stripe, the rest get 429, and nothing fails
    assert statuses == {200: 10, 429: 990}
    reached = world.sessions.checkout_calls + world.sessions.portal_calls
    assert len(reached) == 10
    # And another user still gets through
    assert flood(checkout_api, portal_api, world, "polite", 2) == {200: 2}


def test_control_without_the_limiter_the_flood_reaches_stripe(
    checkout_api: Invoke, portal_api: Invoke, world: World
) -> None:
    world.limiter = AdmitAll()
    world.directory.link("greedy", "cus_greedy")
    statuses = flood(checkout_api, portal_api, world, "greedy", 100)
    assert statuses == {200: 100}  # the harness would see a missing limit


def test_the_window_resets_after_a_minute(billing_table: str) -> None:
    now = [1_790_000_000.0]
    limiter = DynamoRateLimiter(boto3.client("dynamodb"), billing_table, 2, clock=lambda: now[0])
    limiter.admit("u")
    limiter.admit("u")
    with pytest.raises(errors.RateLimited):
        limiter.admit("u")
    now[0] += 60
    limiter.admit("u")
