"""The Customer Portal over HTTP: a paying user gets a portal session for exactly their own customer; another user
gets a 404 and never the first user's customer, whatever they put in the body, query or headers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from devstack.stack import LocalStack
from devstack.template import load_template
from tests.e2e.test_checkout_journey import TIMEOUT, bearer, directory, new_user, pay_on_hosted_page, submit_form

pytestmark = pytest.mark.e2e


def portal_calls(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.emulator.requests_to("/v1/billing_portal/sessions", "POST")


@pytest.fixture(scope="module")
def paying_user(local_stack: LocalStack) -> dict[str, str]:
    """A user who checked out and paid through the API and the hosted page (once for this module)."""
    user_id = new_user()
    token = local_stack.token_for(user_id, f"{user_id}@example.com")
    response = requests.post(
        f"{local_stack.api_url}/checkout/sessions", headers=bearer(token), json={"plan": "starter"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    pay_on_hosted_page(response.json()["url"])
    customer_id = directory(local_stack).customer_for_user(user_id)
    assert customer_id is not None
    subscription_id = local_stack.emulator.store.get(response.json()["id"], "checkout.session")["subscription"]
    return {"user_id": user_id, "token": token, "customer_id": customer_id, "subscription_id": subscription_id}


def test_a_paying_user_gets_a_portal_session_for_exactly_their_customer(
    local_stack: LocalStack, paying_user: dict[str, str]
) -> None:
    # Given a user who paid for a plan, and the stack's configured return URL
    return_url = str(load_template()["Parameters"]["PortalReturnUrl"]["Default"])
    before = len(portal_calls(local_stack))
    # When they ask for a portal session with no body
    response = requests.post(
        f"{local_stack.api_url}/portal/sessions", headers=bearer(paying_user["token"]), timeout=TIMEOUT
    )
    # Then they get only a URL, pointing at the emulator's portal
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"url"}
    url = response.json()["url"]
    assert url.startswith(local_stack.stripe_url + "/")
    # And Stripe saw one portal session for exactly their customer with the configured return URL
    [call] = portal_calls(local_stack)[before:]
    assert call["params"]["customer"] == paying_user["customer_id"]
    assert call["params"]["return_url"] == return_url
    assert "flow_data" not in call["params"]
    # And the portal page shows their subscription and returns to the configured URL
    page = requests.get(url, timeout=TIMEOUT)
    assert page.status_code == 200
    assert f"id='{paying_user['subscription_id']}'" in page.text
    assert f"href='{return_url}'" in page.text


def test_a_cancel_flow_opens_on_the_users_own_subscription(
    local_stack: LocalStack, paying_user: dict[str, str]
) -> None:
    # Given the paying user (their subscription was projected by the webhook before the page redirected)
    before = len(portal_calls(local_stack))
    # When they ask for the cancel flow
    deadline = time.monotonic() + 5
    while True:
        response = requests.post(
            f"{local_stack.api_url}/portal/sessions",
            headers=bearer(paying_user["token"], **{"Idempotency-Key": "cancel-" + paying_user["user_id"]}),
            json={"flow": "subscription_cancel"},
            timeout=TIMEOUT,
        )
        # 409 only while a webhook retry is still on its way; the first delivery normally lands before the redirect
        if response.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(1.0)  # few attempts: session requests count against the per-user limit
    # Then Stripe was asked for a cancel flow on exactly their subscription
    assert response.status_code == 200, response.text
    [call] = portal_calls(local_stack)[before:]
    assert call["params"]["customer"] == paying_user["customer_id"]
    assert call["params"]["flow_data"] == {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": paying_user["subscription_id"]},
    }
    # And pressing Cancel on that page schedules the cancellation of their subscription
    cancelled = submit_form(response.json()["url"], "cancel")
    assert cancelled.status_code in (200, 302, 303), cancelled.text
    subscription = local_stack.emulator.store.get(paying_user["subscription_id"], "subscription")
    assert subscription["cancel_at_period_end"] is True


def test_another_user_gets_404_and_never_the_paying_users_customer(
    local_stack: LocalStack, paying_user: dict[str, str]
) -> None:
    # Given a second signed-in user with no billing account, who knows the first user's customer and user ids
    intruder = new_user()
    token = local_stack.token_for(intruder, f"{intruder}@example.com")
    victim_customer, victim_user = paying_user["customer_id"], paying_user["user_id"]
    before = len(portal_calls(local_stack))
    api = local_stack.api_url
    # When they ask for a portal session plainly, and through every field, query and header they control
    plain = requests.post(f"{api}/portal/sessions", headers=bearer(token), timeout=TIMEOUT)
    in_query = requests.post(
        f"{api}/portal/sessions?customer={victim_customer}&user_id={victim_user}",
        headers=bearer(token),
        timeout=TIMEOUT,
    )
    in_headers = requests.post(
        f"{api}/portal/sessions",
        headers=bearer(
            token, **{"Stripe-Account": victim_customer, "X-User-Id": victim_user, "X-Customer": victim_customer}
        ),
        timeout=TIMEOUT,
    )
    in_body = requests.post(
        f"{api}/portal/sessions", headers=bearer(token), json={"customer": victim_customer}, timeout=TIMEOUT
    )
    # Then the plain, query and header requests are 404 with a reason (they have no mapping), the body one is 422
    for response in (plain, in_query, in_headers):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["reason"]
        assert victim_customer not in response.text
    assert in_body.status_code == 422, in_body.text
    # And no portal session reached Stripe, so none exists for the victim's customer on the intruder's behalf
    assert portal_calls(local_stack)[before:] == []
    # And the intruder still has no customer; the victim's mapping is untouched
    mapping = directory(local_stack)
    assert mapping.customer_for_user(intruder) is None
    assert mapping.user_for_customer(victim_customer) == victim_user


def offered_prices(page_text: str) -> set[str]:
    """The prices the hosted portal offers to switch to (its "Switch to <price>" buttons)."""
    import re

    return set(re.findall(r">Switch to (price_[A-Za-z0-9_]+)<", page_text))


def catalog_prices(stack: LocalStack) -> dict[str, str]:
    """price id -> plan key, for every seat price of the template's catalog (as provisioned in the emulator)."""
    import json

    from tollgate.config import PlanCatalog

    catalog = PlanCatalog.model_validate(json.loads(str(load_template()["Parameters"]["PlanCatalog"]["Default"])))
    by_key = {p["lookup_key"]: p["id"] for p in stack.emulator.store.all("price") if p["lookup_key"]}
    return {by_key[k]: plan.key for plan in catalog.plans for k in plan.licensed_lookup_keys()}


def subscription_plan(stack: LocalStack, token: str, expected: str) -> str | None:
    """``plan`` of GET /billing/subscription once the webhook projected the switch (or the last seen)."""
    deadline = time.monotonic() + 15
    plan = None
    while time.monotonic() < deadline:
        response = requests.get(f"{stack.api_url}/billing/subscription", headers=bearer(token), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        plan = response.json()["plan"]
        if plan == expected:
            return plan
        time.sleep(0.3)
    return plan


def test_the_portal_offers_only_the_catalogs_prices_and_every_switch_leaves_a_known_plan(
    local_stack: LocalStack,
) -> None:
    # Given a paying starter user, and a price someone added by hand to the Team product (not in the catalog)
    user_id = new_user()
    token = local_stack.token_for(user_id, f"{user_id}@example.com")
    created = requests.post(
        f"{local_stack.api_url}/checkout/sessions", headers=bearer(token), json={"plan": "starter"}, timeout=TIMEOUT
    )
    assert created.status_code == 200, created.text
    pay_on_hosted_page(created.json()["url"])
    known = catalog_prices(local_stack)
    team_product = local_stack.emulator.store.get(next(p for p, k in known.items() if k == "team"))["product"]
    stray = requests.post(
        f"{local_stack.stripe_url}/v1/prices",
        headers={"Authorization": f"Bearer {local_stack.api_key}"},
        data={
            "product": team_product,
            "currency": "usd",
            "unit_amount": "29000",
            "recurring[interval]": "year",
            "lookup_key": "team_yearly_by_hand",
        },
        timeout=TIMEOUT,
    ).json()
    # When they open the portal
    session = requests.post(f"{local_stack.api_url}/portal/sessions", headers=bearer(token), timeout=TIMEOUT)
    assert session.status_code == 200, session.text
    url = session.json()["url"]
    page = requests.get(url, timeout=TIMEOUT).text
    # Then it offers exactly the catalog's other seat prices, never the hand-made one
    current = next(p for p, k in known.items() if k == "starter")
    assert offered_prices(page) == set(known) - {current}
    assert stray["id"] not in page
    # And a switch to the hand-made price is refused by the portal
    subscription = local_stack.emulator.store.get(created.json()["id"], "checkout.session")["subscription"]
    refused = requests.post(
        url + "/action", data={"action": "switch", "subscription": subscription, "price": stray["id"]}, timeout=TIMEOUT
    )
    assert refused.status_code == 400
    # When they switch to each offered price in turn, Then GET /billing/subscription shows that price's plan
    for price_id, plan_key in [*((p, k) for p, k in known.items() if p != current), (current, "starter")]:
        switched = submit_form(url, f"Switch to {price_id}")
        assert switched.status_code in (200, 302, 303), switched.text
        assert subscription_plan(local_stack, token, plan_key) == plan_key
