"""POST /portal/sessions through the real handler: the caller's own customer, configured URLs, optional flows."""

from __future__ import annotations

import json

import pytest

from tests.support.api_world import Invoke
from tests.unit.api.fakes import RETURN_URL, World, subscription


def test_a_user_without_a_billing_account_gets_404(portal_api: Invoke, world: World) -> None:
    response = portal_api("POST", "/portal/sessions", claims={"sub": "nobody"})
    assert response["statusCode"] == 404
    assert "checkout" in json.loads(response["body"])["error"]["reason"]
    assert world.sessions.portal_calls == []


@pytest.mark.parametrize("flow", ["subscription_cancel", "subscription_update"])
def test_subscription_flows_open_on_the_callers_current_subscription(
    portal_api: Invoke, world: World, flow: str
) -> None:
    world.directory.link("user-a", "cus_a")
    world.subscriptions.states["cus_a"] = subscription("cus_a", "active")
    response = portal_api("POST", "/portal/sessions", body={"flow": flow}, claims={"sub": "user-a"})
    assert response["statusCode"] == 200
    [call] = world.sessions.portal_calls
    assert call["params"]["flow_data"] == {"type": flow, flow: {"subscription": "sub_a"}}
    assert call["params"]["return_url"] == RETURN_URL


def test_a_subscription_flow_without_a_subscription_is_a_409(portal_api: Invoke, world: World) -> None:
    world.directory.link("user-a", "cus_a")
    response = portal_api("POST", "/portal/sessions", body={"flow": "subscription_cancel"}, claims={"sub": "user-a"})
    assert response["statusCode"] == 409
    assert world.sessions.portal_calls == []


@pytest.mark.parametrize(
    "body", [{"flow": "delete_everything"}, {"return_url": "https://evil.example"}, {"flow": 1}, ["flow"]]
)
def test_unknown_flows_and_fields_are_422(portal_api: Invoke, world: World, body: object) -> None:
    world.directory.link("user-a", "cus_a")
    response = portal_api("POST", "/portal/sessions", body=json.dumps(body), claims={"sub": "user-a"})
    assert response["statusCode"] == 422
    assert world.sessions.portal_calls == []


def test_a_user_whose_customer_stripe_deleted_gets_404_not_an_upstream_error(portal_api: Invoke, world: World) -> None:
    # Given Stripe deleted the user's customer and its webhook has not been applied yet
    world.directory.link("user-a", "cus_a")
    world.sessions.deleted_customers.add("cus_a")
    # When the user opens the portal, Then "no billing account" (404), and the deletion is recorded
    response = portal_api("POST", "/portal/sessions", claims={"sub": "user-a"})
    assert response["statusCode"] == 404
    assert "checkout" in json.loads(response["body"])["error"]["reason"]
    assert world.directory.deleted == {"cus_a"}
    # And the next attempt answers 404 from the mapping alone, with no Stripe call
    assert portal_api("POST", "/portal/sessions", claims={"sub": "user-a"})["statusCode"] == 404
    assert len(world.sessions.portal_calls) == 1
