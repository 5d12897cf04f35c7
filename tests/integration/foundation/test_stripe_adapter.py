"""The Stripe adapter: a StripeClient pinned to one API version, bounded in time, with SDK errors translated into
the project's own. The real SDK talks HTTP to a scripted local server, so parsing, retries and timeouts are the
SDK's own behaviour, not a mock's."""

from __future__ import annotations

import secrets
import time

import pytest
import stripe

from tests.integration.foundation.conftest import Reply, ScriptedStripe, stripe_error
from tollgate import errors
from tollgate.adapters.stripe_client import PINNED_API_VERSION, build_stripe_client, call_stripe, stripe_errors
from tollgate.config import Settings


def make_key() -> str:
    return "sk" + "_test_" + secrets.token_hex(12)


def settings_for(server: ScriptedStripe, *, timeout: float = 2.0, retries: int = 0) -> Settings:
    return Settings(
        table_name="tollgate-test",
        stripe_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:tollgate/stripe",
        stripe_api_base=server.base_url,
        stripe_timeout_seconds=timeout,
        stripe_max_network_retries=retries,
    )


def test_client_speaks_the_pinned_version_to_the_configured_base(scripted_stripe: ScriptedStripe) -> None:
    # Given a client built from settings pointing at a local base address
    key = make_key()
    client = build_stripe_client(settings_for(scripted_stripe), key)
    # When it retrieves a customer
    customer = client.v1.customers.retrieve("cus_A")
    # Then the request went to that base, authenticated, with the pinned API version
    assert customer.id == "cus_A"
    [request] = scripted_stripe.requests
    assert request["path"] == "/v1/customers/cus_A"
    assert request["headers"]["authorization"] == f"Bearer {key}"
    assert request["headers"]["stripe-version"] == PINNED_API_VERSION == stripe.api_version
    assert PINNED_API_VERSION == "2026-10-28.endive"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (stripe_error("invalid_request_error", 404, "resource_missing"), errors.UpstreamNotFound),
        (stripe_error("invalid_request_error", 400, "parameter_invalid_integer"), errors.UpstreamRejected),
        (stripe_error("invalid_request_error", 409, "lock_timeout"), errors.UpstreamUnavailable),
        (stripe_error("invalid_request_error", 401), errors.UpstreamRejected),
        (stripe_error("invalid_request_error", 403), errors.UpstreamRejected),
        (stripe_error("card_error", 402, "card_declined"), errors.UpstreamRejected),
        (stripe_error("idempotency_error", 400), errors.UpstreamRejected),
        (stripe_error("api_error", 500), errors.UpstreamUnavailable),
        (stripe_error("api_error", 503), errors.UpstreamUnavailable),
        (stripe_error("invalid_request_error", 429, "rate_limit"), errors.UpstreamUnavailable),
    ],
    ids=["404", "400", "409", "401", "403", "402-card", "idempotency", "500", "503", "429"],
)
def test_stripe_errors_become_domain_errors(
    scripted_stripe: ScriptedStripe, reply: Reply, expected: type[errors.TollgateError]
) -> None:
    # Given Stripe answering with an error
    scripted_stripe.script(reply)
    client = build_stripe_client(settings_for(scripted_stripe), make_key())
    # When the adapter makes the call / Then the caller sees exactly one domain error, chained to the SDK's
    with pytest.raises(expected) as raised:
        call_stripe("customers.retrieve", lambda: client.v1.customers.retrieve("cus_A"))
    assert type(raised.value) is expected
    assert isinstance(raised.value.__cause__, stripe.StripeError)


def test_rate_limit_passes_stripes_retry_after_on(scripted_stripe: ScriptedStripe) -> None:
    scripted_stripe.script(
        Reply(429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}}, {"Retry-After": "7"})
    )
    client = build_stripe_client(settings_for(scripted_stripe), make_key())
    with pytest.raises(errors.UpstreamUnavailable) as raised, stripe_errors("customers.retrieve"):
        client.v1.customers.retrieve("cus_A")
    assert raised.value.retry_after_seconds == 7


def test_error_logs_hold_no_secret_or_customer_data(
    scripted_stripe: ScriptedStripe, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Stripe echoing the key and an e-mail in its error message (as "Invalid API Key provided: ..." does)
    key = make_key()
    scripted_stripe.script(
        stripe_error("invalid_request_error", 401, message=f"Invalid API Key provided: {key} a@b.example")
    )
    client = build_stripe_client(settings_for(scripted_stripe), key)
    # When the call fails
    with pytest.raises(errors.UpstreamRejected), stripe_errors("customers.retrieve"):
        client.v1.customers.retrieve("cus_A")
    # Then the log names the operation and error class, never the message's content
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "stripe credentials rejected" in logged
    assert "customers.retrieve" in logged
    assert key not in logged
    assert "a@b.example" not in logged


def test_other_exceptions_are_not_disguised(scripted_stripe: ScriptedStripe) -> None:
    # A bug is a bug: only Stripe's errors are translated
    with pytest.raises(KeyError), stripe_errors("anything"):
        raise KeyError("programming error")


def test_a_slow_stripe_fails_within_the_configured_timeout(scripted_stripe: ScriptedStripe) -> None:
    # Given Stripe taking 1.5 s to answer and a request budget of 1 s
    budget = 1.0
    scripted_stripe.script(Reply(200, {"id": "cus_A", "object": "customer"}, delay_seconds=1.5))
    client = build_stripe_client(settings_for(scripted_stripe, timeout=0.3, retries=0), make_key())
    # When the adapter calls it
    started = time.monotonic()
    with pytest.raises(errors.UpstreamUnavailable), stripe_errors("customers.retrieve"):
        client.v1.customers.retrieve("cus_A")
    # Then the caller hears "unavailable" inside the budget
    assert time.monotonic() - started < budget


def test_control_a_client_on_sdk_defaults_blows_the_same_budget(scripted_stripe: ScriptedStripe) -> None:
    # Control for the timeout test: the SDK's default transport (80 s timeout) waits for the slow answer
    scripted_stripe.script(Reply(200, {"id": "cus_A", "object": "customer"}, delay_seconds=1.5))
    naive = stripe.StripeClient(make_key(), base_addresses={"api": scripted_stripe.base_url})
    started = time.monotonic()
    naive.v1.customers.retrieve("cus_A")
    assert time.monotonic() - started >= 1.0


def test_a_transient_stripe_failure_is_retried_per_settings(scripted_stripe: ScriptedStripe) -> None:
    # Given one 503 followed by success, and one configured retry
    scripted_stripe.script(stripe_error("api_error", 503), Reply(200, {"id": "cus_A", "object": "customer"}))
    client = build_stripe_client(settings_for(scripted_stripe, retries=1), make_key())
    # When the adapter calls it / Then the retry absorbs the blip
    assert call_stripe("customers.retrieve", lambda: client.v1.customers.retrieve("cus_A")).id == "cus_A"
    assert len(scripted_stripe.requests) == 2


def test_control_without_retries_the_same_blip_fails(scripted_stripe: ScriptedStripe) -> None:
    scripted_stripe.script(stripe_error("api_error", 503), Reply(200, {"id": "cus_A", "object": "customer"}))
    client = build_stripe_client(settings_for(scripted_stripe, retries=0), make_key())
    with pytest.raises(errors.UpstreamUnavailable):
        call_stripe("customers.retrieve", lambda: client.v1.customers.retrieve("cus_A"))
    assert len(scripted_stripe.requests) == 1
