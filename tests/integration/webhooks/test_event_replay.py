"""Replaying undelivered events: while the webhook was unreachable Stripe could deliver nothing; the replay command
lists what Stripe never delivered (delivery_success=false, 30 days) and applies it through the webhook's own
processing, once. Control: without it the table stays stale. Running it twice changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.webhooks.test_success_page_race import USER, World, build_world, pay
from tollgate.adapters.stripe_api.undelivered_events import SdkUndeliveredEvents
from tollgate.services.event_replay import EventReplay

pytestmark = pytest.mark.slow

DEAD_URL = "http://127.0.0.1:9/webhooks/stripe"  # the discard port: nothing listens, every delivery fails


@pytest.fixture
def world(emu: Any, stripe_client: Any, billing_table: str) -> World:
    return build_world(emu, stripe_client, billing_table)


def replay(world: World) -> EventReplay:
    return EventReplay(SdkUndeliveredEvents(lambda: world.client), world.service, world.emu.clock.now)


def outage(world: World) -> str:
    """The webhook unreachable while a customer pays: returns the checkout session id."""
    world.client.v1.webhook_endpoints.create({"url": DEAD_URL, "enabled_events": ["*"]})
    session_id, _completed = pay(world)  # its events go to the dead endpoint only; none reaches the product
    world.emu.events.wait_idle()
    return session_id


def test_events_that_failed_while_the_webhook_was_down_are_applied_once(world: World) -> None:
    # Given a payment whose events could not be delivered
    outage(world)
    assert world.status.for_user(USER)["status"] == "none"
    # When the undelivered events are replayed
    report = replay(world).run(days=30)
    # Then the subscription is projected and access granted, announced once
    assert report.failed == []
    assert report.listed >= 1
    shown = world.status.for_user(USER)
    assert shown["status"] == "active"
    assert shown["access"]["allowed"] is True
    assert len(world.activations()) == 1
    # And a second run changes nothing: no event applies a state change again
    customer = world.directory.customer_for_user(USER)
    assert customer is not None
    before = world.repository.for_customer(customer)
    again = replay(world).run(days=30)
    assert again.failed == []
    assert again.listed == report.listed
    assert again.outcomes["applied"] == 0
    assert world.repository.for_customer(customer) == before
    assert len(world.activations()) == 1


def test_control_without_the_replay_the_table_stays_stale(world: World) -> None:
    outage(world)
    assert world.status.for_user(USER)["status"] == "none"
    assert world.activations() == []
