"""Usage billing on the local stack: a subscribed user's usage travels producer helper -> local SQS (moto server)
-> the devstack SQS poller -> the usage function worker -> the Stripe emulator's meter, and the meter's totals for
the customer equal what was sent."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from devstack.stack import LocalStack
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
from tollgate.adapters.sqs import UsageProducer

pytestmark = pytest.mark.e2e

# The template's catalog: a metered price on the api_tokens meter, provisioned when the stack starts.
METERED_LOOKUP_KEY = "api_tokens_metered"


def stripe_call(stack: LocalStack, method: str, path: str, **kwargs: object) -> dict[str, object]:
    response = requests.request(
        method,
        stack.stripe_url + path,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def subscribe_through_checkout(stack: LocalStack, user_id: str) -> str:
    """The user subscribes the product's way: POST /checkout/sessions, then pays on the hosted page. The checkout
    function creates the Stripe customer and the user -> customer mapping the usage reporter reads."""
    token = stack.token_for(user_id, f"{user_id}@example.com")
    created = requests.post(
        f"{stack.api_url}/checkout/sessions",
        json={"plan": "starter"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert created.status_code == 200, created.text
    paid = requests.post(created.json()["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=30)
    assert paid.status_code == 303
    customer = DynamoCustomerDirectory(stack.client("dynamodb"), stack.table_name).customer_for_user(user_id)
    assert customer is not None
    return customer


def test_usage_of_a_subscribed_user_reaches_the_customers_meter_totals(local_stack: LocalStack) -> None:
    # Given a user who subscribed through Checkout and also holds the metered API-token price
    user_id = "user-usage-" + secrets.token_hex(4)
    customer = subscribe_through_checkout(local_stack, user_id)
    [metered] = stripe_call(local_stack, "GET", "/v1/prices", params={"lookup_keys[]": METERED_LOOKUP_KEY})["data"]  # type: ignore[misc]
    stripe_call(local_stack, "POST", "/v1/subscriptions", data={"customer": customer, "items[0][price]": metered["id"]})
    meter = next(
        m for m in stripe_call(local_stack, "GET", "/v1/billing/meters")["data"] if m["event_name"] == "api_tokens"
    )  # type: ignore[index,union-attr]
    start = int(local_stack.now()) - 3600
    # When the application reports 12 usage records for the user with the producer helper (one of them twice)
    values = [((i * 7) % 23) + 1 for i in range(12)]
    records = [
        {
            "schema_version": 1,
            "usage_id": f"{user_id}-req-{i}",
            "event_name": "api_tokens",
            "user_id": user_id,
            "value": value,
            "occurred_at": int(local_stack.now()) - 60,
        }
        for i, value in enumerate(values)
    ]
    producer = UsageProducer(local_stack.client("sqs"), local_stack.usage_queue_url)
    assert producer.send(records + records[:1]) == []
    # Then the devstack poller runs the usage function and the meter's totals for the customer equal the sum sent

    def meter_total() -> int:
        summaries = stripe_call(
            local_stack,
            "GET",
            f"/v1/billing/meters/{meter['id']}/event_summaries",
            params={"customer": customer, "start_time": start, "end_time": int(local_stack.now()) + 3600},
        )["data"]
        return sum(s["aggregated_value"] for s in summaries)  # type: ignore[union-attr,index,misc]

    deadline = time.monotonic() + 25
    total = meter_total()
    while total < sum(values) and time.monotonic() < deadline:
        time.sleep(0.5)
        total = meter_total()
    assert total == sum(values)
    # And once the queue is empty (the re-sent record handled too) the total is still exactly that
    sqs = local_stack.client("sqs")
    while time.monotonic() < deadline + 5:
        attributes = sqs.get_queue_attributes(QueueUrl=local_stack.usage_queue_url, AttributeNames=["All"])
        counts = attributes["Attributes"]
        if counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        time.sleep(0.5)
    else:
        pytest.fail("the usage queue did not drain")
    assert meter_total() == sum(values)
    # And nothing was parked
    dlq = local_stack.client("sqs").receive_message(QueueUrl=local_stack.dlq_url, WaitTimeSeconds=0)
    assert dlq.get("Messages", []) == []
