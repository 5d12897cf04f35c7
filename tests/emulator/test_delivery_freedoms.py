"""Deliveries like Stripe's (no order, some twice, a little late; the Checkout redirect not waiting for the webhook)
and the serial knob as the control: what the local stack's ``delivery`` modes give the emulator."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import stripe

from devstack.stack import emulator_delivery
from devstack.stripe_emulator import StripeEmulator

from .conftest import TEST_KEY, Receiver, make_client
from .test_checkout import new_session

#: Enough that a 10 % duplicate share shows at least once but with odds of 1 in 4,000 (0.9**80).
EVENTS = 80


@pytest.fixture(params=["stripe", "serial"])
def mode_emulator(request: pytest.FixtureRequest) -> Iterator[tuple[str, StripeEmulator]]:
    freedoms, checkout_wait = emulator_delivery(request.param)
    emu = StripeEmulator(
        api_keys=(TEST_KEY,),
        webhook_retry_base_seconds=0.05,
        checkout_wait_seconds=checkout_wait,
        delivery=freedoms,
    )
    emu.start()
    yield request.param, emu
    emu.stop()


def emit_customers(client: stripe.StripeClient, receiver: Receiver) -> tuple[list[str], list[float]]:
    """``EVENTS`` customer.created events, in emission order, with the moment each was emitted."""
    client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["customer.created"]})
    emitted_at = []
    for i in range(EVENTS):
        client.v1.customers.create({"email": f"u{i}@example.com"})
        emitted_at.append(time.time())
    ids = [e.id for e in reversed(client.v1.events.list({"limit": EVENTS}).data)]
    return ids, emitted_at


def test_like_stripe_shuffles_duplicates_and_delays_and_serial_does_not(
    mode_emulator: tuple[str, StripeEmulator], receiver: Receiver
) -> None:
    mode, emu = mode_emulator
    client = make_client(emu.url)
    # Given an endpoint, when 80 events are emitted one after the other
    emitted, emitted_at = emit_customers(client, receiver)
    assert emu.events.wait_idle(10)
    arrivals = [json.loads(r["body"])["id"] for r in receiver.accepted()]
    copies = Counter(arrivals)
    first_arrival = {eid: r["at"] for r, eid in reversed(list(zip(receiver.accepted(), arrivals, strict=True)))}
    lateness = [first_arrival[eid] - at for eid, at in zip(emitted, emitted_at, strict=True)]
    # Then every event arrives at least once, and none is left pending (a duplicate is not counted twice)
    assert set(copies) == set(emitted)
    assert client.v1.events.list({"delivery_success": False}).data == []
    assert all(e.pending_webhooks == 0 for e in client.v1.events.list({"limit": EVENTS}).data)
    first_order = list(dict.fromkeys(arrivals))
    if mode == "stripe":
        # Like Stripe: not in emission order, some twice, some held well after their emission
        assert first_order != emitted
        assert any(n == 2 for n in copies.values())
        assert max(lateness) > 0.25  # holds are uniform in [0, 0.4] s
    else:
        # The serial knob (control): once each, in emission order, at once
        assert first_order == emitted
        assert set(copies.values()) == {1}
        assert max(lateness) < 0.25


def test_checkout_redirects_without_waiting_for_the_webhook_only_like_stripe(
    mode_emulator: tuple[str, StripeEmulator], receiver: Receiver
) -> None:
    mode, emu = mode_emulator
    client = make_client(emu.url)
    # Given an endpoint listening to checkout.session.completed that takes 300 ms to answer
    receiver.delay_s = 0.3
    client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["checkout.session.completed"]})
    cs = new_session(client)
    # When paying on the hosted page
    resp = requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    answered_at_redirect = any(d.delivered for d in emu.events.sender.deliveries)
    # Then Stripe-like Checkout redirects before the endpoint answered; serial waits for the delivery (control)
    assert resp.status_code == 303
    assert answered_at_redirect is (mode == "serial")
    assert receiver.wait_for(1)


def test_an_unknown_delivery_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="delivery must be"):
        emulator_delivery("ordered")


def test_make_dev_refuses_an_unknown_delivery_mode_before_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import devstack.__main__ as cli

    # Given DEVSTACK_DELIVERY misspelt, when make dev starts
    monkeypatch.setenv("DEVSTACK_DELIVERY", "ordered")
    monkeypatch.setattr(cli, "LocalStack", None)  # nothing may be built
    code = cli.main(["--api-port", "0", "--stripe-port", "0", "--aws-port", "0"])
    # Then it exits 2 naming the variable and the modes
    assert code == 2
    assert "DEVSTACK_DELIVERY must be stripe or serial, not 'ordered'" in capsys.readouterr().err
