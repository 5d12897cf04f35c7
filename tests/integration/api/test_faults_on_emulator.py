"""Stripe fault matrix on POST /checkout/sessions and POST /portal/sessions, through the real StripeClient.

For each fault: every attempt of the one logical call carries the same Idempotency-Key, attempts stay within
max_network_retries + 1, the caller gets the documented status, and the total time fits the function's timeout.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from stripe._http_client import HTTPClient

from tests.integration.api.conftest import Stack
from tests.support.template import load_template
from tollgate.services.checkout import stripe_call_budget_seconds

# (fault knobs, expected status to the caller, expected attempts) with STRIPE_MAX_NETWORK_RETRIES=2
MATRIX: dict[str, tuple[dict[str, Any], int, int]] = {
    "500 once": ({"status": 500}, 200, 2),
    "503 until retries are exhausted": ({"status": 503, "count": 3}, 503, 3),
    "409 lock once": ({"status": 409}, 200, 2),
    "429 with Stripe-Should-Retry: true": ({"status": 429, "should_retry": True}, 200, 2),
    "bare 429": ({"status": 429}, 503, 1),
    "500 with Stripe-Should-Retry: false": ({"status": 500, "should_retry": False}, 503, 1),
    # The first attempt times out while Stripe is still working; the retries with the same key meet Stripe's
    # in-flight 409 until retries run out, so the caller gets 503 and its retry replays the one session.
    "slow response beyond the client timeout": ({"status": None, "delay_ms": 1500}, 503, 3),
    "dropped connection": ({"status": None, "drop_connection": True}, 200, 2),
}
ENDPOINTS = {"checkout": "/v1/checkout/sessions", "portal": "/v1/billing_portal/sessions"}


def function_timeout(logical_id: str) -> float:
    return float(load_template()["Resources"][logical_id]["Properties"]["Timeout"])


@pytest.fixture
def returning_user(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    # stripe-python's backoff sleeps are compressed so the matrix runs in seconds; the budget bound below uses
    # the real ones, so it still holds.
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.02)
    customer = stack.container.stripe().v1.customers.create(params={"metadata": {"app_user_id": "user-f"}})
    stack.container.customer_directory.link("user-f", customer.id)
    stack.emulator.request_log.clear()
    return str(customer.id)


def call(stack: Stack, endpoint: str, client_key: str) -> dict[str, Any]:
    # The frontend sends one Idempotency-Key per logical action and repeats it on its own retry. (Without one the
    # key is derived from a 5-minute window, and a retry that straddles a window boundary is a new request.)
    headers = {"Idempotency-Key": client_key}
    if endpoint == "checkout":
        return stack.checkout(
            "POST", "/checkout/sessions", body={"plan": "starter"}, claims={"sub": "user-f"}, headers=headers
        )
    return stack.portal("POST", "/portal/sessions", claims={"sub": "user-f"}, headers=headers)


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("case", sorted(MATRIX))
def test_stripe_fault_matrix(stack: Stack, returning_user: str, endpoint: str, case: str) -> None:
    knobs, expected_status, expected_attempts = MATRIX[case]
    path = ENDPOINTS[endpoint]
    # Given Stripe misbehaves on this endpoint
    stack.emulator.faults.add(path, method="POST", **knobs)
    # When the user asks for a session
    client_key = "action-" + uuid.uuid4().hex
    started = time.monotonic()
    response = call(stack, endpoint, client_key)
    elapsed = time.monotonic() - started
    # Then the caller gets the documented status (with Retry-After when it may retry)
    assert response["statusCode"] == expected_status, response["body"]
    if expected_status == 503:
        assert int(response["headers"]["Retry-After"]) >= 1
    else:
        body = json.loads(response["body"])
        assert set(body) == ({"id", "url"} if endpoint == "checkout" else {"url"})
    # And every attempt was the same logical call
    if case.startswith("slow"):
        # Stripe finishes (and logs) the slow first attempt; on a loaded machine that can take a while.
        deadline = time.monotonic() + 10
        while len(stack.stripe_requests("POST", path)) < expected_attempts and time.monotonic() < deadline:
            time.sleep(0.05)
    attempts = stack.stripe_requests("POST", path)
    assert len(attempts) == expected_attempts
    assert len({a["idempotency_key"] for a in attempts}) == 1
    assert attempts[0]["idempotency_key"]
    # And the time spent fits the budget, which fits the function's timeout
    budget = stripe_call_budget_seconds(stack.container.settings)
    assert elapsed < budget <= function_timeout("CheckoutFunction" if endpoint == "checkout" else "PortalFunction")
    # And the caller's retry of the same request never opens a second session
    retried = call(stack, endpoint, client_key)
    assert retried["statusCode"] == 200
    if endpoint == "checkout":
        assert len(stack.emulator.store.all("checkout.session")) == 1
        if expected_status == 200:
            assert json.loads(retried["body"]) == json.loads(response["body"])


def test_control_without_idempotency_keys_a_slow_response_opens_two_sessions(stack: Stack, returning_user: str) -> None:
    # Control: the same slow fault against a client call without an idempotency key creates a duplicate session
    # (the SDK then generates a fresh key per call, and our retry-by-hand would too)
    client = stack.container.stripe()
    params: Any = {
        "mode": "subscription",
        "customer": returning_user,
        "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
        "success_url": "https://app.example.test/ok",
    }
    stack.emulator.faults.add("/v1/checkout/sessions", method="POST", status=None, delay_ms=1500)
    with pytest.raises(Exception, match=r"(?i)timed? ?out|connection"):
        client.v1.checkout.sessions.create(params=params, options={"max_network_retries": 0})
    client.v1.checkout.sessions.create(params=params, options={"max_network_retries": 0})
    time.sleep(0.6)  # let the slow first request finish on the emulator
    assert len(stack.emulator.store.all("checkout.session")) == 2
