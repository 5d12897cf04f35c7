"""A catalog plan naming a v2 pricing plan (private preview) checks out with ``checkout_items`` of type
``pricing_plan_subscription_item`` and the preview ``Stripe-Version`` on that one request, through the real handler,
composition root and StripeClient against the emulator."""

from __future__ import annotations

import json

import pytest
import requests

from tests.integration.api.conftest import CANCEL_URL, CATALOG, SUCCESS_URL, Stack
from tollgate.adapters.stripe_api.sessions import StripeSessionGateway
from tollgate.adapters.stripe_client import PINNED_API_VERSION
from tollgate.errors import UpstreamRejected
from tollgate.services.checkout import PRICING_PLAN_CHECKOUT_VERSION

USAGE_PRO = {"key": "usage-pro", "name": "Usage Pro", "pricing_plan": "bpp_test_usage_pro"}


@pytest.fixture
def pricing_plan_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("PLAN_CATALOG", json.dumps({"plans": [*CATALOG["plans"], USAGE_PRO]}))
    return stack


def test_a_pricing_plan_checkout_sends_checkout_items_with_the_preview_version(pricing_plan_stack: Stack) -> None:
    stack = pricing_plan_stack
    # Given a new user and a catalog plan that names the seeded pricing plan
    claims = {"sub": "user-ppx", "email": "ppx@example.test", "email_verified": "true"}
    # When they start a checkout for it
    response = stack.checkout("POST", "/checkout/sessions", body={"plan": "usage-pro"}, claims=claims)
    # Then they get a session
    assert response["statusCode"] == 200, response["body"]
    session = json.loads(response["body"])
    assert set(session) == {"id", "url"}
    # And the one Checkout request carried checkout_items (no line_items) and the preview version header
    [call] = stack.stripe_requests("POST", "/v1/checkout/sessions")
    params = call["params"]
    assert params["checkout_items"] == [
        {
            "type": "pricing_plan_subscription_item",
            "pricing_plan_subscription_item": {"pricing_plan": "bpp_test_usage_pro"},
        }
    ]
    assert "line_items" not in params
    assert call["stripe_version"] == PRICING_PLAN_CHECKOUT_VERSION
    assert call["status"] == 200
    # And everything else about it is the usual server-chosen session for the caller's own customer
    customer_id = stack.container.customer_directory.customer_for_user("user-ppx")
    assert (params["mode"], params["customer"], params["client_reference_id"]) == (
        "subscription",
        customer_id,
        "user-ppx",
    )
    assert (params["success_url"], params["cancel_url"]) == (SUCCESS_URL, CANCEL_URL)
    assert params["metadata"] == {"app_user_id": "user-ppx", "plan": "usage-pro"}
    # And only that request used the preview version: the customer creation kept the pinned one
    [customer_call] = stack.stripe_requests("POST", "/v1/customers")
    assert customer_call["stripe_version"] == PINNED_API_VERSION
    # When the customer pays on the hosted page
    paid = requests.post(session["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    assert paid.status_code in (302, 303), paid.text
    # Then the session completed into a pricing-plan subscription for that customer, carrying the user id
    completed = stack.emulator.store.get(session["id"], "checkout.session")
    assert (completed["status"], completed["customer"]) == ("complete", customer_id)
    plan_subscription = stack.emulator.store.get(
        completed["pricing_plan_subscription"], "v2.billing.pricing_plan_subscription"
    )
    assert plan_subscription["metadata"]["app_user_id"] == "user-ppx"


def test_get_plans_lists_the_pricing_plan_without_an_amount(pricing_plan_stack: Stack) -> None:
    response = pricing_plan_stack.checkout("GET", "/plans")
    assert response["statusCode"] == 200, response["body"]
    [usage_pro] = [p for p in json.loads(response["body"])["plans"] if p["plan"] == "usage-pro"]
    assert (usage_pro["name"], usage_pro["amount"], usage_pro["currency"]) == ("Usage Pro", None, "usd")


@pytest.mark.plants_invalid_parameters  # checkout_items without its preview version
def test_control_without_the_preview_version_stripe_refuses_checkout_items(pricing_plan_stack: Stack) -> None:
    # Given the same parameters the service builds, sent on the pinned (non-preview) version
    stack = pricing_plan_stack
    stack.checkout("POST", "/checkout/sessions", body={"plan": "usage-pro"}, claims={"sub": "user-ppc"})
    [built] = stack.stripe_requests("POST", "/v1/checkout/sessions")
    gateway = StripeSessionGateway(stack.container.stripe)
    # When they are sent without the preview header, Then Stripe rejects them (a 502 to the caller)
    with pytest.raises(UpstreamRejected):
        gateway.create_checkout_session(built["params"], "control-no-preview", None)
    rejected = stack.stripe_requests("POST", "/v1/checkout/sessions")[-1]
    assert (rejected["status"], rejected["stripe_version"]) == (400, PINNED_API_VERSION)
