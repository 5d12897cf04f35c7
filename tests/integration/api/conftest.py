"""The customer-facing API on moto (table, Secrets Manager) and the in-process Stripe emulator, wired through the
real composition root: the same StripeClient settings, adapters and handlers as in Lambda."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from devstack.stripe_emulator import StripeEmulator
from tests.support.events import FakeLambdaContext, http_api_event
from tests.support.moto_clients import AtomicDynamoDB

SUCCESS_URL = "https://app.example.test/billing/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://app.example.test/pricing"
RETURN_URL = "https://app.example.test/account"
# Plans named the two ways the catalog allows, against the emulator's seed.
CATALOG = {
    "plans": [
        {"key": "starter", "name": "Starter", "price_lookup_key": "starter_monthly"},
        {"key": "team", "name": "Team", "price_id": "price_team_monthly", "min_quantity": 1, "max_quantity": 50},
    ]
}


#: The account's secret key: the emulator accepts only the keys it is configured with, like Stripe.
API_KEY = "sk" + "_test_" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def emulator() -> Iterator[StripeEmulator]:
    emu = StripeEmulator(api_keys=(API_KEY,), checkout_wait_seconds=1.0)
    emu.start()
    yield emu
    emu.stop()


@dataclass
class Stack:
    emulator: StripeEmulator
    container: Any
    api_key: str
    checkout: Callable[..., dict[str, Any]]
    portal: Callable[..., dict[str, Any]]

    def stripe_requests(self, method: str, path: str) -> list[dict[str, Any]]:
        return self.emulator.requests_to(path, method)


def _invoker(module: str) -> Callable[..., dict[str, Any]]:
    import importlib

    app = importlib.import_module(module)

    def invoke(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return app.handler(http_api_event(method, path, **kwargs), FakeLambdaContext(timeout_seconds=15))  # type: ignore[no-any-return]

    return invoke


@pytest.fixture
def stack(emulator: StripeEmulator, billing_table: str, monkeypatch: pytest.MonkeyPatch, fresh_container: Any) -> Stack:
    emulator.reset()
    api_key = API_KEY
    arn = boto3.client("secretsmanager").create_secret(
        Name="tollgate/stripe-" + secrets.token_hex(4), SecretString=json.dumps({"api_key": api_key})
    )["ARN"]
    env = {
        "STRIPE_SECRET_ARN": arn,
        "STRIPE_API_BASE": emulator.url,
        "PLAN_CATALOG": json.dumps(CATALOG),
        "CHECKOUT_SUCCESS_URL": SUCCESS_URL,
        "CHECKOUT_CANCEL_URL": CANCEL_URL,
        "PORTAL_RETURN_URL": RETURN_URL,
        "STRIPE_TIMEOUT_SECONDS": "1",
        "STRIPE_MAX_NETWORK_RETRIES": "2",
        "SESSION_RATE_LIMIT_PER_MINUTE": "1000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The tests send up to 50 requests at once through one container; in-process moto needs each call made atomic.
    fresh_container.dynamodb = AtomicDynamoDB(boto3.client("dynamodb"))
    return Stack(
        emulator, fresh_container, api_key, _invoker("functions.checkout.app"), _invoker("functions.portal.app")
    )
