"""Idempotency-Key semantics: replay (even of a 500), mismatch, in flight; v2 too."""

from __future__ import annotations

import threading

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import TEST_KEY, make_client

AUTH = {"Authorization": "Bearer " + TEST_KEY}


def test_same_key_same_params_replays_first_response(emu: StripeEmulator) -> None:
    # Given a first POST with a key
    headers = {**AUTH, "Idempotency-Key": "cus-create-u1"}
    first = requests.post(emu.url + "/v1/customers", data={"email": "u1@example.com"}, headers=headers, timeout=5)
    # When the same request is sent again
    second = requests.post(emu.url + "/v1/customers", data={"email": "u1@example.com"}, headers=headers, timeout=5)
    # Then the first response is replayed, flagged, and only one customer exists
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(make_client(emu.url).v1.customers.list().data) == 1


def test_same_key_different_params_is_idempotency_error(client: stripe.StripeClient) -> None:
    client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
    with pytest.raises(stripe.IdempotencyError) as err:
        client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "k1"})
    assert err.value.http_status == 400


def test_recorded_500_is_replayed_with_its_status(emu: StripeEmulator) -> None:
    # Given the endpoint itself fails once (recorded as the key's result), with Stripe-Should-Retry: false
    emu.faults.add("/v1/customers", method="POST", status=500, record=True, should_retry=False)
    headers = {**AUTH, "Idempotency-Key": "k-500"}
    first = requests.post(emu.url + "/v1/customers", data={"email": "x@example.com"}, headers=headers, timeout=5)
    # When the client retries with the same key after the fault is gone
    again = requests.post(emu.url + "/v1/customers", data={"email": "x@example.com"}, headers=headers, timeout=5)
    # Then the 500 is replayed, not re-executed
    assert first.status_code == 500
    assert again.status_code == 500
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # And a new key executes normally
    fresh = requests.post(
        emu.url + "/v1/customers", data={"email": "x@example.com"}, headers={**AUTH, "Idempotency-Key": "k2"}, timeout=5
    )
    assert fresh.status_code == 200


def test_validation_errors_are_not_saved(emu: StripeEmulator) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-invalid"}
    bad = requests.post(emu.url + "/v1/checkout/sessions", data={"mode": "subscription"}, headers=headers, timeout=5)
    assert bad.status_code == 400
    again = requests.post(emu.url + "/v1/checkout/sessions", data={"mode": "subscription"}, headers=headers, timeout=5)
    assert "Idempotent-Replayed" not in again.headers


def test_in_flight_key_gets_409(emu: StripeEmulator) -> None:
    # Given a slow first request holding the key
    emu.faults.add("/v1/customers", method="POST", status=None, delay_ms=400)
    headers = {**AUTH, "Idempotency-Key": "k-slow"}
    results: dict[str, requests.Response] = {}

    def first() -> None:
        results["first"] = requests.post(
            emu.url + "/v1/customers", data={"email": "s@example.com"}, headers=headers, timeout=5
        )

    t = threading.Thread(target=first)
    t.start()
    import time

    time.sleep(0.15)
    # When a concurrent request with the same key arrives
    second = requests.post(emu.url + "/v1/customers", data={"email": "s@example.com"}, headers=headers, timeout=5)
    t.join()
    # Then it gets 409 while the first one succeeds
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    assert results["first"].status_code == 200


def test_sdk_retries_409_in_flight_and_gets_the_replay(emu: StripeEmulator) -> None:
    # Given a slow first create and a concurrent SDK call with the same key (retries enabled)
    emu.faults.add("/v1/customers", method="POST", status=None, delay_ms=100)
    out: dict[str, str] = {}
    c = make_client(emu.url, retries=20)

    def call(name: str) -> None:
        out[name] = c.v1.customers.create({"email": "same@example.com"}, {"idempotency_key": "user-42"}).id

    threads = [threading.Thread(target=call, args=(n,)) for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Then exactly one customer was created and both callers see it
    assert out["a"] == out["b"]
    assert len(c.v1.customers.list().data) == 1


def test_v2_post_idempotency(emu: StripeEmulator) -> None:
    headers = {**AUTH, "Idempotency-Key": "v2-key", "Content-Type": "application/json"}
    first = requests.post(emu.url + "/v2/billing/meter_event_session", data="{}", headers=headers, timeout=5)
    again = requests.post(emu.url + "/v2/billing/meter_event_session", data="{}", headers=headers, timeout=5)
    assert again.json()["authentication_token"] == first.json()["authentication_token"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = requests.post(emu.url + "/v2/billing/meter_event_session", data='{"x": 1}', headers=headers, timeout=5)
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
