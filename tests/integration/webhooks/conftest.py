"""One in-process Stripe emulator for the webhook integration tests (reset before each test that uses it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator

EMULATOR_KEY = "sk" + "_test_" + "webhooks"


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[StripeEmulator]:
    emu = StripeEmulator(api_keys=(EMULATOR_KEY,), webhook_retry_base_seconds=0.05, checkout_wait_seconds=5.0)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator_session: StripeEmulator) -> StripeEmulator:
    emulator_session.reset()
    return emulator_session


def emulator_client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        EMULATOR_KEY,
        base_addresses={"api": url, "meter_events": url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=10),
    )


@pytest.fixture
def stripe_client(emu: StripeEmulator) -> stripe.StripeClient:
    return emulator_client(emu.url)
