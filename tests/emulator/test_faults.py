"""Fault knobs mapped to what stripe-python does with them (F6 of the reliability catalog)."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import TEST_KEY, make_client

PATH = "/v1/checkout/sessions"
PARAMS = {
    "mode": "subscription",
    "line_items": [{"price": "price_team_monthly", "quantity": 1}],
    "success_url": "https://app.example.com/ok?cs={CHECKOUT_SESSION_ID}",
}


def attempts(emu: StripeEmulator) -> list[dict]:
    return emu.requests_to(PATH, "POST")


@pytest.mark.parametrize("status", [500, 503, 409])
def test_retryable_status_is_retried_with_the_same_key(emu: StripeEmulator, status: int) -> None:
    # Given the next call to create a Checkout Session fails with `status`
    emu.faults.add(PATH, method="POST", status=status, count=1)
    client = make_client(emu.url, retries=2)
    # When the SDK creates a session with its own idempotency key
    cs = client.v1.checkout.sessions.create(PARAMS, {"idempotency_key": "checkout-u1-r1"})
    # Then it retried once with the identical key and succeeded
    log = attempts(emu)
    assert [r["status"] for r in log] == [status, 200]
    assert {r["idempotency_key"] for r in log} == {"checkout-u1-r1"}
    assert cs.status == "open"


def test_generated_key_is_reused_across_sdk_retries(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", status=503, count=2)
    make_client(emu.url, retries=2).v1.checkout.sessions.create(PARAMS)
    keys = [r["idempotency_key"] for r in attempts(emu)]
    assert len(keys) == 3
    assert len(set(keys)) == 1


def test_429_with_should_retry_true_is_retried(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", status=429, should_retry=True)
    make_client(emu.url, retries=2).v1.checkout.sessions.create(PARAMS)
    assert [r["status"] for r in attempts(emu)] == [429, 200]


def test_bare_429_is_not_retried(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", status=429, count=5)
    with pytest.raises(stripe.RateLimitError):
        make_client(emu.url, retries=2).v1.checkout.sessions.create(PARAMS)
    assert len(attempts(emu)) == 1


def test_500_with_should_retry_false_is_not_retried(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", status=500, should_retry=False, count=5)
    with pytest.raises(stripe.APIError):
        make_client(emu.url, retries=2).v1.checkout.sessions.create(PARAMS)
    assert len(attempts(emu)) == 1


def test_retries_exhausted_raise_api_error(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", status=500, count=10)
    with pytest.raises(stripe.APIError):
        make_client(emu.url, retries=2).v1.checkout.sessions.create(PARAMS)
    assert len(attempts(emu)) == 3


def test_dropped_connection_raises_api_connection_error_after_retries(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", drop_connection=True, count=10)
    with pytest.raises(stripe.APIConnectionError):
        make_client(emu.url, retries=1).v1.checkout.sessions.create(PARAMS)
    log = attempts(emu)
    assert len(log) == 2
    assert all(r["status"] is None for r in log)


def test_slow_response_beyond_client_timeout(emu: StripeEmulator) -> None:
    emu.faults.add(PATH, method="POST", status=None, delay_ms=800, count=1)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        make_client(emu.url, retries=0, timeout=0.3).v1.checkout.sessions.create(PARAMS)
    assert time.monotonic() - started < 0.8


def test_lock_timeout_409_body(emu: StripeEmulator) -> None:
    emu.faults.add("/v1/customers/cus_x", method="GET", status=409)
    body = requests.get(
        emu.url + "/v1/customers/cus_x", headers={"Authorization": "Bearer " + TEST_KEY}, timeout=5
    ).json()
    assert body["error"]["code"] == "lock_timeout"


def test_fault_and_latency_over_the_control_api(emu: StripeEmulator) -> None:
    # Given faults registered over HTTP
    requests.post(
        emu.url + "/_emulator/faults", json={"path": PATH, "method": "POST", "count": 1, "status": 503}, timeout=5
    )
    requests.post(emu.url + "/_emulator/latency", json={"ms": 25}, timeout=5)
    client = make_client(emu.url, retries=1)
    # When a call is made
    started = time.monotonic()
    client.v1.checkout.sessions.create(PARAMS)
    # Then the fault was applied once and each attempt paid the simulated latency
    assert [r["status"] for r in attempts(emu)] == [503, 200]
    assert time.monotonic() - started >= 0.05
    requests.delete(emu.url + "/_emulator/faults", timeout=5)
    assert emu.faults.latency_ms == 0
