"""The Checkout journey on a local stack started with ``StripeEventIngress=eventbridge``: provisioning creates two
``amazon_eventbridge`` destinations (snapshot and thin) and no webhook endpoint, the stack associates each partner
event source with a bus named after it, and the emulator delivers Stripe's events there (moto) the way Stripe does;
the rules feed the Stripe events queue and its function. Access is granted through those deliveries alone."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devstack.stack import LocalStack, StackConfig
from tests.e2e.test_webhook_lifecycle import api, status

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bridged_stack() -> Iterator[LocalStack]:
    stack = LocalStack(StackConfig(state_dir=None, parameter_overrides={"StripeEventIngress": "eventbridge"}))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 45) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_provisioning_creates_eventbridge_destinations_and_the_stack_associates_their_sources(
    bridged_stack: LocalStack,
) -> None:
    store = bridged_stack.emulator.store
    # Then Stripe holds no webhook endpoint and no webhook destination, only the two EventBridge destinations
    assert [w for w in store.all("webhook_endpoint") if w["status"] == "enabled"] == []
    destinations = [d for d in store.all("v2.core.event_destination") if d["status"] == "enabled"]
    assert sorted((d["type"], d["event_payload"]) for d in destinations) == [
        ("amazon_eventbridge", "snapshot"),
        ("amazon_eventbridge", "thin"),
    ]
    account = {d["amazon_eventbridge"]["aws_account_id"] for d in destinations}
    assert account == {bridged_stack.resolver.account_id}
    # And each partner event source has a bus named after it, and the function trusts exactly those sources
    sources = {d["amazon_eventbridge"]["aws_event_source_arn"].split(":event-source/", 1)[1] for d in destinations}
    buses = {bridged_stack.ref("StripeSnapshotEventBus"), bridged_stack.ref("StripeThinEventBus")}
    assert buses == sources
    environment = bridged_stack.functions.pools["StripeEventsFunction"].environment
    assert set(environment["STRIPE_EVENT_SOURCES"].split(",")) == sources


def test_checkout_grants_access_through_eventbridge_deliveries_alone(bridged_stack: LocalStack) -> None:
    user = f"user-eb-{uuid.uuid4().hex[:8]}"
    bridged_pool = bridged_stack.functions.pools["StripeEventsFunction"]
    # Given no webhook route registered: the stack runs no webhook function, and a POST to the route's path gets
    # API Gateway's own 404 (no integration behind it)
    assert "WebhookFunction" not in bridged_stack.functions.pools
    unrouted = requests.post(f"{bridged_stack.api_url}/webhooks/stripe", data=b"{}", timeout=10)
    assert (unrouted.status_code, unrouted.json()) == (404, {"message": "Not Found"})
    # When the user starts Checkout and pays on the emulator's hosted page
    created = api(bridged_stack, "POST", "/checkout/sessions", user, json={"plan": "starter"})
    assert created.status_code == 200, created.text
    paid = requests.post(created.json()["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=60)
    assert paid.status_code in (302, 303), paid.text
    # Then access is granted, by events that went Stripe -> partner source -> bus -> rule -> queue -> function
    body = eventually(lambda: status(bridged_stack, user), lambda b: b["access"]["allowed"])
    assert body["access"]["allowed"] is True, body
    assert body["status"] in ("trialing", "active")
    assert bridged_pool.invocations > 0
    # And Stripe made no HTTP delivery at all: every event went to the partner event sources
    assert bridged_stack.emulator.events.deliveries == []
    delivered = bridged_stack.emulator.events.sender.bridge.delivered
    assert any(d["source"] in {bridged_stack.ref("StripeSnapshotEventBus")} for d in delivered)


def test_an_event_on_the_partner_bus_from_another_source_is_refused(bridged_stack: LocalStack) -> None:
    # Given a paying user's customer id
    user = f"user-eb-{uuid.uuid4().hex[:8]}"
    created = api(bridged_stack, "POST", "/checkout/sessions", user, json={"plan": "starter"})
    requests.post(created.json()["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=60)
    before = eventually(lambda: status(bridged_stack, user), lambda b: b["access"]["allowed"])
    assert before["access"]["allowed"] is True
    subscription = bridged_stack.emulator.store.get(before["subscription_id"], "subscription")
    # When someone puts a forged cancellation on the partner bus under a Stripe-looking source that is not ours
    forged = {
        "id": "evt_forged" + uuid.uuid4().hex[:12],
        "object": "event",
        "type": "customer.subscription.deleted",
        "created": int(time.time()) + 3600,
        "livemode": False,
        "data": {"object": {**subscription, "status": "canceled"}},
    }
    bus = bridged_stack.ref("StripeSnapshotEventBus")

    def put(source: str, event: dict[str, Any]) -> None:
        entry = {"Source": source, "DetailType": event["type"], "Detail": json.dumps(event), "EventBusName": bus}
        assert bridged_stack.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0

    pool = bridged_stack.functions.pools["StripeEventsFunction"]
    calls = pool.invocations
    put("aws.partner/stripe.com/ed_test_NotThisStacksDestination", forged)
    eventually(lambda: pool.invocations, lambda n: n > calls)
    time.sleep(1.0)
    # Then the function refused it: access is unchanged
    assert status(bridged_stack, user)["access"]["allowed"] is True
    # Control: the same event under this stack's partner source is applied (so the refusal above was the check)
    put(bus, {**forged, "id": forged["id"] + "x"})
    after = eventually(lambda: status(bridged_stack, user), lambda b: not b["access"]["allowed"])
    assert after["access"]["allowed"] is False, after
