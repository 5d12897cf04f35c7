"""The billing lifecycle end to end on the local stack: the emulator's hosted Checkout, its signed webhooks into the
webhook function through the HTTP API, the portal, the emulator's clock; access read back through
``GET /billing/subscription``; every step's domain event read from the local EventBridge bus (rule -> SQS)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from devstack.stack import LocalStack

pytestmark = pytest.mark.e2e

DAY = 86_400


def api(stack: LocalStack, method: str, path: str, user: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.token_for(user)}"}
    return requests.request(method, f"{stack.api_url}{path}", headers=headers, timeout=60, **kwargs)


def status(stack: LocalStack, user: str) -> dict[str, Any]:
    response = api(stack, "GET", "/billing/subscription", user)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def eventually(
    stack: LocalStack, user: str, check: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """Webhook deliveries are asynchronous (as Stripe's are): poll the product's answer."""
    deadline = time.monotonic() + timeout
    while True:
        body = status(stack, user)
        if check(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def stripe_control(stack: LocalStack, path: str, payload: dict[str, Any]) -> None:
    requests.post(f"{stack.stripe_url}{path}", json=payload, timeout=30).raise_for_status()


def bus_listener(stack: LocalStack) -> Callable[[], list[dict[str, Any]]]:
    """A rule on the billing bus forwarding every tollgate event to a new SQS queue; returns a reader."""
    sqs, events = stack.client("sqs"), stack.client("events")
    name = f"e2e-domain-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.ref("BillingEventBus")
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["tollgate.billing"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                return seen
            for m in messages:
                seen.append(json.loads(m["Body"])["detail"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    return read


def pay(stack: LocalStack, user: str, card: str = "4242424242424242") -> dict[str, Any]:
    created = api(stack, "POST", "/checkout/sessions", user, json={"plan": "starter"})
    assert created.status_code == 200, created.text
    session = created.json()
    paid = requests.post(session["url"], data={"card": card}, allow_redirects=False, timeout=60)
    assert paid.status_code in (302, 303), paid.text
    return {"id": session["id"], "redirect": paid.headers["Location"]}


def names_for(events: list[dict[str, Any]], subscription_id: str) -> list[str]:
    return [e["name"] for e in events if e.get("subscription_id") == subscription_id]


def test_pay_cancel_at_period_end_then_period_passes(local_stack: LocalStack) -> None:
    read_bus = bus_listener(local_stack)
    user = f"user-e2e-{uuid.uuid4().hex[:8]}"
    # When the user pays on the emulator's Checkout page and it redirects to the success URL at once (as Stripe
    # does: the webhook may still be on its way, out of order, or twice)
    paid = pay(local_stack, user)
    # Then GET /billing/subscription says allowed once the events are in (what the success page waits for)
    body = eventually(local_stack, user, lambda b: b["access"]["allowed"])
    assert body["access"]["allowed"] is True, body
    assert body["status"] in ("trialing", "active")
    subscription_id = body["subscription_id"]
    page = api(local_stack, "GET", f"/checkout/sessions/{paid['id']}", user)
    assert page.status_code == 200
    assert page.json()["access"]["allowed"] is True
    # When they cancel in the portal (at period end)
    portal = api(local_stack, "POST", "/portal/sessions", user, json={})
    assert portal.status_code == 200, portal.text
    url = portal.json()["url"]
    requests.post(f"{url}/action", data={"action": "cancel", "subscription": subscription_id}, timeout=30)
    body = eventually(local_stack, user, lambda b: b["cancel_at_period_end"] or b["cancel_at"] is not None)
    # Then still allowed, until the period end
    assert body["access"]["allowed"] is True
    assert body["access"]["until"] == body["current_period_end"]
    # When the emulator's clock passes the period end
    stripe_control(local_stack, "/_emulator/clock/advance", {"to": body["current_period_end"] + 3600})
    body = eventually(local_stack, user, lambda b: b["status"] == "canceled")
    # Then denied
    assert body["access"]["allowed"] is False
    # And a domain event was published for each step
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = names_for(read_bus(), subscription_id)
        if "subscription.canceled" in names:
            break
        time.sleep(0.3)
    assert names.count("subscription.activated") == 1, names
    assert "subscription.cancellation_scheduled" in names, names
    assert "subscription.canceled" in names, names


def test_failed_renewal_keeps_access_through_every_retry_then_unpaid(local_stack: LocalStack) -> None:
    read_bus = bus_listener(local_stack)
    user = f"user-e2e-{uuid.uuid4().hex[:8]}"
    pay(local_stack, user)
    body = eventually(local_stack, user, lambda b: b["access"]["allowed"])
    assert body["access"]["allowed"] is True, body
    subscription_id = body["subscription_id"]
    # Given the customer's card starts declining
    customer = requests.get(
        f"{local_stack.stripe_url}/v1/subscriptions/{subscription_id}",
        headers={"Authorization": f"Bearer {local_stack.api_key}"},
        timeout=30,
    ).json()["customer"]
    stripe_control(local_stack, f"/_emulator/customers/{customer}/card", {"card": "decline_on_charge"})
    # When the renewal is attempted at the period end
    stripe_control(local_stack, "/_emulator/clock/advance", {"to": body["current_period_end"] + 60})
    body = eventually(local_stack, user, lambda b: b["status"] == "past_due")
    # Then past_due, still allowed while Stripe retries (the default PastDueGrace=until_stripe_gives_up)
    assert body["status"] == "past_due"
    assert body["access"] == {"allowed": True, "reason": "past_due_retrying", "until": None}
    # When every dunning retry fails (3 x 3 days), access holds at each retry, past the 7 days of the old default
    for _ in range(3):
        stripe_control(local_stack, "/_emulator/clock/advance", {"days": 3})
        body = status(local_stack, user)
        if body["status"] != "past_due":
            break
        assert body["access"]["allowed"] is True, body
    stripe_control(local_stack, "/_emulator/clock/advance", {"days": 1})
    body = eventually(local_stack, user, lambda b: b["status"] == "unpaid")
    # Then unpaid, denied
    assert body["status"] == "unpaid"
    assert body["access"]["allowed"] is False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = names_for(read_bus(), subscription_id)
        if "subscription.unpaid" in names:
            break
        time.sleep(0.3)
    assert names.count("subscription.activated") == 1, names
    assert "payment.failed" in names, names
    assert "subscription.past_due" in names, names
    assert "subscription.unpaid" in names, names


def test_cancel_then_resume_through_the_routes_announces_each_once(local_stack: LocalStack) -> None:
    read_bus = bus_listener(local_stack)
    user = f"user-e2e-{uuid.uuid4().hex[:8]}"
    pay(local_stack, user)
    body = eventually(local_stack, user, lambda b: b["access"]["allowed"])
    subscription_id = body["subscription_id"]
    # When the user cancels at period end through the API (and the request is retried)
    for _ in range(2):
        cancel = api(local_stack, "POST", "/billing/subscription/cancel", user)
        assert cancel.status_code == 202, cancel.text
    # Then the webhook brings the scheduled cancellation in; access holds until the period end
    body = eventually(local_stack, user, lambda b: b["cancel_at_period_end"])
    assert body["cancel_at_period_end"] is True, body
    assert body["access"] == {"allowed": True, "reason": "cancel_at_period_end", "until": body["current_period_end"]}
    # When they resume (twice)
    for _ in range(2):
        resume = api(local_stack, "POST", "/billing/subscription/resume", user)
        assert resume.status_code == 202, resume.text
    body = eventually(local_stack, user, lambda b: not b["cancel_at_period_end"])
    # Then active again, open-ended
    assert body["cancel_at_period_end"] is False
    assert body["cancel_at"] is None
    assert body["status"] in ("active", "trialing")
    assert body["access"]["allowed"] is True
    assert body["access"]["until"] is None
    # And exactly one cancellation_scheduled and one resumption (subscription.renewed) event were published
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = names_for(read_bus(), subscription_id)
        if "subscription.renewed" in names:
            break
        time.sleep(0.3)
    time.sleep(1.0)  # let a duplicate, if any, arrive too
    names = names_for(read_bus(), subscription_id)
    assert names.count("subscription.cancellation_scheduled") == 1, names
    assert names.count("subscription.renewed") == 1, names


def test_another_user_cannot_cancel_without_a_subscription(local_stack: LocalStack) -> None:
    # A signed-in user with no billing account: 404, and nothing reaches Stripe for anyone else
    response = api(local_stack, "POST", "/billing/subscription/cancel", f"user-e2e-{uuid.uuid4().hex[:8]}")
    assert response.status_code == 404, response.text
