"""The checkout journey over HTTP: client -> HTTP API emulator -> JWT authorizer -> checkout function worker ->
Stripe emulator, then the hosted Checkout page driven like a browser (GET the page, submit its Pay form).

Every assertion about what reached Stripe reads the emulator's request log, filtered to this test's user (the stack
is shared by the whole session; other tests' requests are in the same log).
"""

from __future__ import annotations

import json
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from devstack.stack import LocalStack
from devstack.template import load_template
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory

pytestmark = pytest.mark.e2e

TIMEOUT = 30


class _Forms(HTMLParser):
    """The forms of a hosted page: action, hidden fields and the submit button's name/value/label."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}})
        elif tag == "input" and self.forms and a.get("type") == "hidden":
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._button = {"name": a.get("name", ""), "value": a.get("value", ""), "label": ""}

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["label"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            self.forms[-1]["button"] = self._button
            self._button = None


def _label_and_value(button: dict[str, str]) -> tuple[str, str]:
    return button.get("label", "").strip(), button.get("value", "")


def submit_form(page_url: str, label: str) -> requests.Response:
    """GET a hosted page and submit the form whose button reads ``label`` (or submits the value ``label``: labels
    carry amounts and dates), as a browser would (no redirect follow: the success URL's frontend is not running)."""
    page = requests.get(page_url, timeout=TIMEOUT)
    assert page.status_code == 200, page.text
    parser = _Forms()
    parser.feed(page.text)
    [form] = [f for f in parser.forms if label in _label_and_value(f.get("button") or {})]
    assert form["method"].lower() == "post"
    data = dict(form["fields"])
    if form["button"]["name"]:
        data[form["button"]["name"]] = form["button"]["value"]
    return requests.post(urljoin(page_url, form["action"]), data=data, allow_redirects=False, timeout=TIMEOUT)


def pay_on_hosted_page(checkout_url: str) -> str:
    """Press the emulator's Checkout page's main button (Subscribe / Start trial with the 4242 card); returns the
    redirect target (the configured success URL)."""
    paid = submit_form(checkout_url, "pay")
    assert paid.status_code in (302, 303), paid.text
    return str(paid.headers["Location"])


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def checkout_parameters() -> dict[str, str]:
    """The template's defaults the local stack runs with (no parameter overrides in the e2e fixture)."""
    params = load_template()["Parameters"]
    return {name: str(params[name]["Default"]) for name in ("CheckoutSuccessUrl", "CheckoutCancelUrl", "PlanCatalog")}


def new_user() -> str:
    return f"user-e2e-{uuid.uuid4().hex[:12]}"


def directory(stack: LocalStack) -> DynamoCustomerDirectory:
    """The stack's own user <-> customer mapping, read from the local DynamoDB table."""
    return DynamoCustomerDirectory(stack.client("dynamodb"), stack.table_name)


def session_calls_for(stack: LocalStack, user_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in stack.emulator.requests_to("/v1/checkout/sessions", "POST")
        if r["params"].get("client_reference_id") == user_id
    ]


def test_checkout_over_http_reaches_stripe_with_server_chosen_values_and_the_page_completes(
    local_stack: LocalStack,
) -> None:
    # Given a brand-new user with a verified email and the stack's configured URLs and catalog
    user_id = new_user()
    token = local_stack.token_for(user_id, f"{user_id}@example.com")
    config = checkout_parameters()
    team = next(p for p in json.loads(config["PlanCatalog"])["plans"] if p["key"] == "team")

    # When they ask the API for a Checkout session for 3 Team seats, trying to smuggle their own price and URL
    response = requests.post(
        f"{local_stack.api_url}/checkout/sessions",
        headers=bearer(token),
        json={"plan": "team", "quantity": 3},
        timeout=TIMEOUT,
    )
    # Then they get exactly {"id", "url"}, the url being the emulator's hosted page
    assert response.status_code == 200, response.text
    session = response.json()
    assert set(session) == {"id", "url"}
    assert session["url"].startswith(local_stack.stripe_url + "/")

    # When they open the hosted page and press Pay
    location = pay_on_hosted_page(session["url"])
    # Then Checkout redirects to the configured success URL, carrying this session's id
    success_base = config["CheckoutSuccessUrl"].split("?", 1)[0]
    assert location.split("?", 1)[0] == success_base
    assert parse_qs(urlsplit(location).query)["session_id"] == [session["id"]]

    # And Stripe saw exactly one session for this user, built only from server-side values
    [call] = session_calls_for(local_stack, user_id)
    params = call["params"]
    price = local_stack.emulator.store.get(params["line_items"][0]["price"], "price")
    assert price["lookup_key"] == team["price_lookup_key"]
    assert params["line_items"] == [{"price": price["id"], "quantity": "3"}]
    assert (params["mode"], params["client_reference_id"]) == ("subscription", user_id)
    assert (params["success_url"], params["cancel_url"]) == (config["CheckoutSuccessUrl"], config["CheckoutCancelUrl"])
    assert params["metadata"]["app_user_id"] == user_id
    assert params["subscription_data"]["metadata"]["app_user_id"] == user_id
    # And the customer is this user's own, created once for them (metadata, idempotency key), not found by email
    [created] = [
        r
        for r in local_stack.emulator.requests_to("/v1/customers", "POST")
        if r["params"].get("metadata", {}).get("app_user_id") == user_id
    ]
    assert created["status"] == 200
    customer = local_stack.emulator.store.get(params["customer"], "customer")
    assert customer["metadata"]["app_user_id"] == user_id
    mapping = directory(local_stack)
    assert (mapping.customer_for_user(user_id), mapping.user_for_customer(customer["id"])) == (customer["id"], user_id)
    assert local_stack.emulator.requests_to("/v1/customers/search", "GET") == []
    assert not [r for r in local_stack.emulator.requests_to("/v1/customers", "GET") if r["query"].get("email")]
    # And the session completed into a Team subscription of 3 for that customer, with the user on its metadata
    completed = local_stack.emulator.store.get(session["id"], "checkout.session")
    assert (completed["status"], completed["customer"]) == ("complete", customer["id"])
    subscription = local_stack.emulator.store.get(completed["subscription"], "subscription")
    assert subscription["metadata"]["app_user_id"] == user_id
    assert [(i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]] == [(price["id"], 3)]


def test_smuggled_fields_are_rejected_before_stripe(local_stack: LocalStack) -> None:
    # Given a user who sends a price, a customer and a redirect of their own choosing
    user_id = new_user()
    hostile = {
        "plan": "team",
        "quantity": 1,
        "price": "price_team_yearly",
        "customer": "cus_someone_else",
        "success_url": "https://evil.example/steal",
    }
    # When they post it through the gateway
    response = requests.post(
        f"{local_stack.api_url}/checkout/sessions",
        headers=bearer(local_stack.token_for(user_id)),
        json=hostile,
        timeout=TIMEOUT,
    )
    # Then the API refuses the body (422) and nothing reached Stripe for them
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error"}
    assert session_calls_for(local_stack, user_id) == []


def test_get_plans_is_public_cacheable_and_shows_the_seeded_catalog(local_stack: LocalStack) -> None:
    # Given the template's catalog and the emulator's seeded prices
    catalog = json.loads(checkout_parameters()["PlanCatalog"])["plans"]
    prices = {p["lookup_key"]: p for p in local_stack.emulator.store.all("price")}
    # When an anonymous client (no Authorization header) lists the plans
    response = requests.get(f"{local_stack.api_url}/plans", timeout=TIMEOUT)
    # Then it gets every plan with its amount, currency and interval as Stripe has them, and may cache the answer
    assert response.status_code == 200, response.text
    plans = response.json()["plans"]
    assert [p["plan"] for p in plans] == [p["key"] for p in catalog]
    for shown, configured in zip(plans, catalog, strict=True):
        price = prices[configured["price_lookup_key"]]
        assert (shown["name"], shown["amount"], shown["currency"], shown["interval"], shown["trial_days"]) == (
            configured["name"],
            price["unit_amount"],
            price["currency"],
            price["recurring"]["interval"],
            configured.get("trial_days", 0),
        )
    cache_control = [d.strip() for d in response.headers["Cache-Control"].split(",")]
    assert "public" in cache_control
    max_age = next(d for d in cache_control if d.startswith("max-age="))
    assert int(max_age.split("=", 1)[1]) > 0
