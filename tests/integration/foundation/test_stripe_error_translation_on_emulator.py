"""The product's Stripe error translation, branch by branch, with the errors the pinned SDK really raises.

stripe-python 16.1.0 maps a v1 error by status: 429 -> RateLimitError, 400/404 -> InvalidRequestError (or
IdempotencyError for type idempotency_error), 401 -> AuthenticationError, 402 -> CardError, 403 -> PermissionError,
anything else -> APIError. So a 409 (an Idempotency-Key still in flight) is an APIError with http_status 409: a
translation branch keyed on InvalidRequestError or IdempotencyError with 409 can never run. The 409 here is a real
one: two concurrent requests under one key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator
from tollgate import errors
from tollgate.adapters.stripe_api.customers import key_replays_failure
from tollgate.adapters.stripe_api.meter_transport import classify
from tollgate.adapters.stripe_client import stripe_errors, translated
from tollgate.ports.stripe import SendResult, SendStatus

KEY = "sk" + "_test_" + "translation"


@pytest.fixture(scope="module")
def emu() -> Iterator[StripeEmulator]:
    emulator = StripeEmulator(api_keys=(KEY,))
    emulator.start()
    yield emulator
    emulator.stop()


def client_for(emu: StripeEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        KEY, base_addresses={"api": emu.url}, max_network_retries=0, http_client=stripe.RequestsClient(timeout=10)
    )


def conflict(emu: StripeEmulator) -> stripe.StripeError:
    """A real 409: the second of two concurrent requests under one Idempotency-Key."""
    emu.reset()
    slow = emu.faults.add("/v1/customers", method="POST", status=None, delay_ms=1500)  # the first one is slow
    client = client_for(emu)
    options: stripe.RequestOptions = {"idempotency_key": "same-key"}
    first = threading.Thread(target=lambda: client.v1.customers.create({"email": "a@example.com"}, options))
    first.start()
    try:
        for _ in range(100):
            if slow.hits:  # the first request holds the key
                break
            threading.Event().wait(0.01)
        with pytest.raises(stripe.StripeError) as raised:
            client.v1.customers.create({"email": "a@example.com"}, options)
    finally:
        first.join()
    return raised.value


def test_a_v1_409_reaches_the_sdk_as_api_error_with_stripes_body(emu: StripeEmulator) -> None:
    exc = conflict(emu)
    assert type(exc) is stripe.APIError
    assert exc.http_status == 409
    assert exc.json_body is not None
    assert exc.json_body["error"]["code"] == "idempotency_key_in_use"  # APIError keeps no `code` attribute


def test_a_409_is_translated_as_a_conflict_that_clears_soon(emu: StripeEmulator) -> None:
    # Given the SDK's exception for a real 409
    exc = conflict(emu)
    # When the product translates it
    with pytest.raises(errors.UpstreamUnavailable) as translated, stripe_errors("customers.create"):
        raise exc
    # Then the caller may retry shortly; the customer key stays usable; a usage send is retried as a conflict
    assert translated.value.retry_after_seconds == 2
    assert not key_replays_failure(exc)
    assert classify(exc) == SendResult(SendStatus.RETRY, "stripe_conflict")


def test_a_400_idempotency_error_means_the_key_replays_a_failure(emu: StripeEmulator) -> None:
    # Given a key first used with other parameters (Stripe's 400 idempotency_error)
    emu.reset()
    client = client_for(emu)
    client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "reused"})
    with pytest.raises(stripe.StripeError) as raised:
        client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "reused"})
    exc = raised.value
    # Then the SDK raises IdempotencyError, which the product treats as a key that can never succeed
    assert type(exc) is stripe.IdempotencyError
    assert exc.http_status == 400
    assert key_replays_failure(exc)
    assert classify(exc) == SendResult(SendStatus.RETRY, "stripe_conflict")


@pytest.mark.parametrize(
    ("status", "sdk_error", "product_error"),
    [
        (400, stripe.InvalidRequestError, errors.UpstreamRejected),
        (401, stripe.AuthenticationError, errors.UpstreamRejected),
        (402, stripe.CardError, errors.UpstreamRejected),
        (404, stripe.InvalidRequestError, errors.UpstreamNotFound),
        (429, stripe.RateLimitError, errors.UpstreamUnavailable),
        (500, stripe.APIError, errors.UpstreamUnavailable),
        (503, stripe.APIError, errors.UpstreamUnavailable),
    ],
)
def test_each_status_reaches_its_translation_branch(
    emu: StripeEmulator, status: int, sdk_error: type[stripe.StripeError], product_error: type[Exception]
) -> None:
    # Given Stripe answering this status (the emulator's fault knob, with Stripe's body for it)
    emu.reset()
    emu.faults.add("/v1/customers/cus_x", method="GET", status=status)
    # When the product calls it
    with pytest.raises(stripe.StripeError) as raised:
        client_for(emu).v1.customers.retrieve("cus_x")
    # Then the SDK raised the class the pinned version maps this status to, and the translation its error
    assert type(raised.value) is sdk_error
    assert raised.value.http_status == status
    assert type(translated("customers.retrieve", raised.value)) is product_error
