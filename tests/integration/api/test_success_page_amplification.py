"""The success page's check fetches the Checkout Session from Stripe: guessing ids must not spend the account's
Stripe rate. Per user it is limited like session creation (STATUS_CHECK_RATE_LIMIT_PER_MINUTE), and an id that is
not Stripe's format never reaches Stripe. Control: without the limit every guess is a Stripe call."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.api.conftest import Stack

CLAIMS = {"sub": "user-guesser", "email": "g@example.com", "email_verified": "true"}
LIMIT = 60


def check(stack: Stack, session_id: str) -> int:
    answer = stack.checkout(
        "GET",
        f"/checkout/sessions/{session_id}",
        claims=CLAIMS,
        scopes=["billing"],
        path_parameters={"session_id": session_id},
        route_key="GET /checkout/sessions/{session_id}",
    )
    return int(answer["statusCode"])


def session_fetches(stack: Stack) -> int:
    return len([r for r in stack.emulator.request_log if r["path"].startswith("/v1/checkout/sessions/")])


def test_two_hundred_random_ids_cost_at_most_the_per_user_limit_of_stripe_calls(stack: Stack) -> None:
    statuses = [check(stack, "cs_test_" + secrets.token_hex(12)) for _ in range(200)]
    assert session_fetches(stack) <= LIMIT
    assert statuses.count(429) >= 200 - LIMIT
    assert set(statuses) <= {404, 429}


def test_malformed_ids_cost_no_stripe_call(stack: Stack) -> None:
    malformed = ["x", "cs_", "cs_test_", "in_123", "cs_test_../../v1/customers", "cs_test_" + "a" * 300, "%00"]
    assert {check(stack, m) for m in malformed * 30} <= {400, 404}  # 404: a path no route matches
    assert session_fetches(stack) == 0


def test_control_without_the_limit_every_guess_is_a_stripe_call(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUS_CHECK_RATE_LIMIT_PER_MINUTE", "1000")
    for _ in range(200):
        check(stack, "cs_test_" + secrets.token_hex(12))
    assert session_fetches(stack) == 200
