"""Checkout through the real handler, composition root and StripeClient against the emulator."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import boto3
import pytest
import requests

from tests.integration.api.conftest import CANCEL_URL, SUCCESS_URL, Stack


def test_a_users_checkout_reaches_stripe_with_only_server_chosen_values_and_completes(stack: Stack) -> None:
    # Given a signed-in user with no customer yet
    claims = {"sub": "user-e2e", "email": "e2e@example.test", "email_verified": "true"}
    # When they start a checkout for 3 Team seats
    response = stack.checkout("POST", "/checkout/sessions", body={"plan": "team", "quantity": 3}, claims=claims)
    assert response["statusCode"] == 200, response["body"]
    session = json.loads(response["body"])
    assert set(session) == {"id", "url"}
    # And pay on the emulator's hosted page
    paid = requests.post(session["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    assert paid.status_code in (302, 303)
    # Then Stripe's request log shows exactly the allowlisted price and quantity, the user's own customer,
    # the user as client_reference_id, and the configured URLs
    [customer_call] = stack.stripe_requests("POST", "/v1/customers")
    assert customer_call["params"]["metadata"] == {"app_user_id": "user-e2e"}
    assert customer_call["idempotency_key"] == "customer:user-e2e:0"
    [session_call] = stack.stripe_requests("POST", "/v1/checkout/sessions")
    customer_id = stack.container.customer_directory.customer_for_user("user-e2e")
    params = session_call["params"]
    assert params["line_items"] == [{"price": "price_team_monthly", "quantity": "3"}]
    assert params["customer"] == customer_id
    assert params["client_reference_id"] == "user-e2e"
    assert (params["success_url"], params["cancel_url"]) == (SUCCESS_URL, CANCEL_URL)
    assert params["subscription_data"]["metadata"] == {"app_user_id": "user-e2e", "plan": "team"}
    # And the session completed into a subscription for that customer
    completed = stack.emulator.store.get(session["id"], "checkout.session")
    assert completed["status"] == "complete"
    assert completed["customer"] == customer_id


def test_stripe_calls_per_session_one_for_a_returning_user_two_for_a_new_one(stack: Stack) -> None:
    def api_calls() -> int:
        return len([r for r in stack.emulator.request_log if r["path"].startswith("/v1/") and r["method"] == "POST"])

    stack.checkout("GET", "/plans")  # resolves and caches the catalog (one call per execution environment)
    before = api_calls()
    stack.checkout("POST", "/checkout/sessions", body={"plan": "starter"}, claims={"sub": "user-new"})
    new_user_calls = api_calls() - before
    before = api_calls()
    stack.checkout("POST", "/checkout/sessions", body={"plan": "team"}, claims={"sub": "user-new"})
    returning_calls = api_calls() - before
    assert (new_user_calls, returning_calls) == (2, 1)


def test_fifty_concurrent_first_checkouts_create_one_customer_and_one_mapping(stack: Stack) -> None:
    # Given a brand-new user firing 50 checkouts at once
    start = Barrier(50)

    def one(_: int) -> dict[str, object]:
        start.wait()
        return stack.checkout("POST", "/checkout/sessions", body={"plan": "starter"}, claims={"sub": "user-rush"})

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(one, range(50)))
    # Then no 5xx, exactly one Stripe customer created, one mapping, and every session is for that customer
    assert sorted({r["statusCode"] for r in responses}) == [200]
    created = [r for r in stack.stripe_requests("POST", "/v1/customers") if r["status"] == 200 and not r["replayed"]]
    assert len(created) == 1
    customers = [c for c in stack.emulator.store.all("customer") if c["metadata"].get("app_user_id") == "user-rush"]
    assert len(customers) == 1
    items = boto3.client("dynamodb").scan(TableName=stack.container.settings.table_name)["Items"]
    mappings = [
        i for i in items if i["pk"]["S"].startswith(("USER#", "CUSTOMER#")) and i["sk"]["S"] in ("CUSTOMER", "USER")
    ]
    assert len(mappings) == 2  # one user -> customer item, one customer -> user item
    sessions = {r["params"]["customer"] for r in stack.stripe_requests("POST", "/v1/checkout/sessions")}
    assert sessions == {customers[0]["id"]}


def test_get_plans_shows_the_resolved_catalog(stack: Stack) -> None:
    response = stack.checkout("GET", "/plans")
    assert response["statusCode"] == 200
    plans = json.loads(response["body"])["plans"]
    assert [(p["plan"], p["amount"], p["currency"], p["interval"]) for p in plans] == [
        ("starter", 900, "usd", "month"),
        ("team", 2900, "usd", "month"),
    ]


def test_a_catalog_that_does_not_resolve_fails_loudly(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a catalog naming a lookup key Stripe does not have
    monkeypatch.setenv(
        "PLAN_CATALOG", json.dumps({"plans": [{"key": "gold", "name": "Gold", "price_lookup_key": "x"}]})
    )
    # When the function first needs its catalog, Then it fails with a 500 and an error log naming the plan
    response = stack.checkout("GET", "/plans")
    assert response["statusCode"] == 500
    assert "gold" not in response["body"]
    assert any("plan 'gold': no Stripe price matches" in str(r.__dict__) for r in caplog.records)
    # And nothing reached Stripe for a checkout
    assert stack.checkout("POST", "/checkout/sessions", body={"plan": "gold"}, claims={"sub": "u"})["statusCode"] == 500
    assert stack.stripe_requests("POST", "/v1/checkout/sessions") == []
