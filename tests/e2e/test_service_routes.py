"""The IAM service routes against the whole local stack: the app's backend signs with SigV4 (the product's client
helper), the local API checks the signature against the local IAM like API Gateway, and the answer is the one the
signed-in user gets. Customer details reach Stripe; erasure deletes the Stripe customer and forgets the user."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials

from devstack.stack import LocalStack
from tests.e2e.test_checkout_journey import TIMEOUT, bearer, directory, new_user, pay_on_hosted_page
from tollgate.adapters.service_client import BillingServiceClient, ServiceCallFailed

pytestmark = pytest.mark.e2e


def service_client(stack: LocalStack, role: str) -> BillingServiceClient:
    principal = stack.service_callers[role]
    credentials = Credentials(principal.access_key_id, principal.secret_access_key)
    return BillingServiceClient(stack.api_url, region=stack.resolver.region, credentials=credentials)


def subscription_as_user(stack: LocalStack, user_id: str) -> dict[str, Any]:
    response = requests.get(
        f"{stack.api_url}/billing/subscription", headers=bearer(stack.token_for(user_id)), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def subscribe(stack: LocalStack, user_id: str) -> dict[str, str]:
    token = stack.token_for(user_id, f"{user_id}@example.com")
    response = requests.post(
        f"{stack.api_url}/checkout/sessions", headers=bearer(token), json={"plan": "starter"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    pay_on_hosted_page(response.json()["url"])
    customer_id = directory(stack).customer_for_user(user_id)
    assert customer_id is not None
    subscription_id = stack.emulator.store.get(response.json()["id"], "checkout.session")["subscription"]
    # Stripe redirects before its events arrive: wait, as the success page does, until access is granted
    assert wait_for(lambda: subscription_as_user(stack, user_id)["access"]["allowed"])
    # and then until Stripe delivered all of this customer's events (the entitlements may come after access)
    assert wait_for(lambda: not undelivered_events_of(stack, customer_id))
    return {"customer_id": customer_id, "subscription_id": subscription_id}


def undelivered_events_of(stack: LocalStack, customer_id: str) -> list[str]:
    """Ids of the customer's events Stripe has not yet delivered successfully (``pending_webhooks`` above 0)."""
    pending = []
    for event in stack.emulator.store.all("event"):
        obj = (event.get("data") or {}).get("object") or {}
        if customer_id in (obj.get("customer"), obj.get("id")) and event.get("pending_webhooks", 0) > 0:
            pending.append(str(event["id"]))
    return pending


def wait_for(condition: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_backend_gets_the_users_own_decision_and_unsigned_requests_never_reach_the_function(
    local_stack: LocalStack,
) -> None:
    # Given a paying user and a user who never subscribed
    paying, newcomer = new_user(), new_user()
    subscribe(local_stack, paying)
    reader = service_client(local_stack, "reader")
    # When the backend asks about each over the signed service route
    # Then it gets exactly what each user gets from GET /billing/subscription
    for user in (paying, newcomer):
        assert reader.billing(user) == subscription_as_user(local_stack, user)
    assert reader.billing(paying)["access"]["allowed"] is True
    assert reader.billing(newcomer)["access"] == {"allowed": False, "reason": "no_subscription", "until": None}
    assert reader.has_feature(newcomer, "anything") is False
    # And an unsigned request, or one with a user's token, is a 403 that never invokes the function
    pool = local_stack.functions.pools["PortalFunction"]  # type: ignore[union-attr]
    before = pool.invocations
    for headers in ({}, bearer(local_stack.token_for(paying))):
        response = requests.get(f"{local_stack.api_url}/service/users/{paying}/billing", headers=headers, timeout=10)
        assert response.status_code == 403
        assert response.json() == {"message": "Forbidden"}
    assert pool.invocations == before


def test_customer_details_reach_stripe_and_erasure_waits_for_the_subscription_to_end(local_stack: LocalStack) -> None:
    # Given a paying user
    user = new_user()
    paid = subscribe(local_stack, user)
    admin, reader = service_client(local_stack, "admin"), service_client(local_stack, "reader")
    # When the account backend sets their name and a new email
    answer = admin.update_customer(user, email=f"renamed-{user}@example.com", name="Ada Lovelace")
    # Then Stripe's customer holds them
    assert answer == {"user_id": user, "updated": ["email", "name"]}
    customer = local_stack.emulator.store.get(paid["customer_id"], "customer")
    assert (customer["email"], customer["name"]) == (f"renamed-{user}@example.com", "Ada Lovelace")
    # And the read-only principal cannot do either
    with pytest.raises(ServiceCallFailed) as refused:
        reader.update_customer(user, name="Mallory")
    assert refused.value.status == 403
    # When the backend asks to erase the user while the subscription is live / Then 409, nothing deleted
    with pytest.raises(ServiceCallFailed) as conflict:
        admin.erase_user(user)
    assert conflict.value.status == 409
    assert not local_stack.emulator.store.get(paid["customer_id"], "customer").get("deleted")
    # When the subscription is canceled in Stripe (immediately) and the webhook has projected it
    local_stack._stripe("DELETE", f"/v1/subscriptions/{paid['subscription_id']}")
    assert wait_for(lambda: reader.billing(user)["status"] == "canceled")
    # Then erasure deletes the Stripe customer and the user is forgotten; a retry is a harmless 200
    assert admin.erase_user(user) == {"user_id": user, "erased": True, "stripe_customer_deleted": True}
    assert admin.erase_user(user)["stripe_customer_deleted"] is False
    assert directory(local_stack).lookup(user).customer_id is None
    assert subscription_as_user(local_stack, user)["status"] == "none"
    assert paid["customer_id"] in local_stack.emulator.store.deleted  # Stripe answers it 404 / deleted from now on
