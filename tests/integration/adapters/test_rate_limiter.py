"""Per-user limit on session creation: 1,000 requests from one user in a minute let 10 through to Stripe."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.api_world import Invoke
from tests.unit.api.fakes import AdmitAll, World
from tollgate import errors
from tollgate.adapters.dynamodb.rate_limiter import DynamoRateLimiter


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


def test_the_limit_frees_up_as_the_previous_minute_slides_out(billing_table: str) -> None:
    # Given a limit of 2 per minute, used up 20 s into a minute
    now = [1_790_000_000.0]  # 20 s into its minute
    limiter = DynamoRateLimiter(boto3.client("dynamodb"), billing_table, 2, clock=lambda: now[0])
    limiter.admit("u")
    limiter.admit("u")
    with pytest.raises(errors.RateLimited) as refused:
        limiter.admit("u")
    assert 1 <= refused.value.retry_after_seconds <= 60
    # When the next minute starts, those 2 still lie mostly within the last 60 s: refused
    now[0] += 60
    with pytest.raises(errors.RateLimited):
        limiter.admit("u")
    # Then once they slid out (80 s later), the user is admitted again
    now[0] += 40
    limiter.admit("u")


def admitted_in_boundary_burst(limiter_for: Any, billing_table: str, limit: int) -> int:
    """`limit` requests in the last second of a minute, then `limit` more in the first second of the next."""
    now = [1_790_000_039.0]  # 59 s into its minute
    limiter = limiter_for(boto3.client("dynamodb"), billing_table, limit, clock=lambda: now[0])
    admitted = 0
    for second in (0, 2):
        now[0] = 1_790_000_039.0 + second
        for _ in range(limit):
            try:
                limiter.admit("burst")
                admitted += 1
            except errors.RateLimited:
                pass
    return admitted


def test_a_burst_straddling_a_minute_boundary_gets_the_limit_not_twice_it(billing_table: str) -> None:
    # Given a limit of 10 per minute, When 10 requests come at 0:59 and 10 more at 1:01
    # Then only the first 10 are admitted (the previous minute still weighs 59/60)
    assert admitted_in_boundary_burst(DynamoRateLimiter, billing_table, 10) == 10


class FixedWindowLimiter:
    """The CONTROL: a counter per clock minute, capped at the limit (what the product did before)."""

    def __init__(self, client: Any, table: str, limit: int, *, clock: Any) -> None:
        self._client, self._table, self._limit, self._clock = client, table, limit, clock

    def admit(self, user_id: str) -> None:
        window = int(self._clock() // 60)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"RATE#{user_id}#{window}"}, "sk": {"S": "RATE"}},
                UpdateExpression="ADD #c :one",
                ConditionExpression="attribute_not_exists(#c) OR #c < :limit",
                ExpressionAttributeNames={"#c": "count"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(self._limit)}},
            )
        except ClientError:
            raise errors.RateLimited("full", retry_after_seconds=1) from None


def test_control_fixed_windows_admit_twice_the_limit_across_the_boundary(billing_table: str) -> None:
    assert admitted_in_boundary_burst(FixedWindowLimiter, billing_table, 10) == 20


def test_the_item_keeps_only_the_last_two_minutes(billing_table: str) -> None:
    now = [1_790_000_000.0]
    limiter = DynamoRateLimiter(boto3.client("dynamodb"), billing_table, 100, clock=lambda: now[0])
    for _ in range(5):
        limiter.admit("u")
        now[0] += 60
    item = boto3.client("dynamodb").get_item(TableName=billing_table, Key={"pk": {"S": "RATE#u"}, "sk": {"S": "RATE"}})[
        "Item"
    ]
    assert sorted(a for a in item if a.startswith("w")) == [f"w{int(now[0] // 60) - 2}", f"w{int(now[0] // 60) - 1}"]
