"""The emulator's objects carry the keys of Stripe's own (`../shared/stripe/fixtures3.json`), with Stripe's shapes.

Each object is built through the emulator's API with the pinned SDK, then its raw JSON is compared with the
fixture of the same resource: equal key sets at the top level and at the nested parts the product reads, a list
object where Stripe has one, null only where the SDK types the field Optional. The file is required: without it
the test fails, unless TOLLGATE_SKIP_STRIPE_FIXTURES=1 says to skip.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from _pytest.outcomes import Failed, Skipped

from devstack.stripe_emulator import StripeEmulator

from .fixture_keys import SKIP_ENV, compare, load_fixtures


@dataclass(frozen=True)
class Resource:
    fixture: str
    sdk_class: type
    nested: tuple[str, ...] = ()
    # Keys Stripe returns that its published example leaves out, by path; each must be typed by the pinned SDK.
    optional: dict[str, set[str]] = field(default_factory=dict)


RESOURCES: dict[str, Resource] = {
    "customer": Resource("customer", stripe.Customer, ("invoice_settings",)),
    "checkout session": Resource(
        "checkout.session", stripe.checkout.Session, ("customer_details", "total_details", "automatic_tax")
    ),
    "subscription": Resource(
        "subscription",
        stripe.Subscription,
        (
            "items",
            "items.data[]",
            "items.data[].price",
            "items.data[].price.recurring",
            "automatic_tax",
            "cancellation_details",
            "invoice_settings",
            "payment_settings",
            "trial_settings",
            "trial_settings.end_behavior",
            "billing_mode",
        ),
    ),
    "subscription item": Resource("subscription_item", stripe.SubscriptionItem, ("price", "price.recurring")),
    "invoice": Resource(
        "invoice",
        stripe.Invoice,
        (
            "parent",
            "parent.subscription_details",
            "lines",
            "lines.data[]",
            "lines.data[].parent",
            "lines.data[].parent.subscription_item_details",
            "lines.data[].period",
            "lines.data[].pricing",
            "status_transitions",
            "automatic_tax",
        ),
        {"lines.data[].pricing": {"price_details"}},
    ),
    "price": Resource("price", stripe.Price, ("recurring",)),
    "product": Resource("product", stripe.Product),
    "portal session": Resource("billing_portal.session", stripe.billing_portal.Session),
    "meter": Resource(
        "billing.meter",
        stripe.billing.Meter,
        ("customer_mapping", "default_aggregation", "status_transitions", "value_settings"),
    ),
    "meter event summary": Resource("billing.meter_event_summary", stripe.billing.MeterEventSummary),
    "event": Resource("event", stripe.Event, ("request",)),
}


def raw(obj: stripe.StripeObject) -> dict[str, Any]:
    """The JSON the emulator sent (not the SDK's conversions)."""
    assert obj.last_response is not None
    data: dict[str, Any] = json.loads(obj.last_response.body)
    return data


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Any]:
    return load_fixtures()


@pytest.fixture
def built(emu: StripeEmulator, client: stripe.StripeClient) -> dict[str, dict[str, Any]]:
    """One of each resource, made the way the product makes them: a paid Checkout, a portal visit, usage."""
    cs = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": "price_team_monthly", "quantity": 1}],
            "success_url": "https://app.example/ok",
            "cancel_url": "https://app.example/cancel",
        }
    )
    requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    session = raw(client.v1.checkout.sessions.retrieve(cs.id))
    subscription = raw(client.v1.subscriptions.retrieve(session["subscription"]))
    customer_id = subscription["customer"]
    client.v1.billing.meter_events.create(
        {"event_name": "api_tokens", "payload": {"stripe_customer_id": customer_id, "value": "7"}}
    )
    meter = raw(client.v1.billing.meters.retrieve("mtr_api_tokens"))
    hour = int(time.time()) // 3600 * 3600
    summaries = client.v1.billing.meters.event_summaries.list(
        meter["id"], {"customer": customer_id, "start_time": hour - 3600, "end_time": hour + 3600}
    )
    events = client.v1.events.list({"type": "customer.created", "limit": 1})
    return {
        "customer": raw(client.v1.customers.retrieve(customer_id)),
        "checkout session": session,
        "subscription": subscription,
        "subscription item": subscription["items"]["data"][0],
        "invoice": raw(client.v1.invoices.retrieve(subscription["latest_invoice"])),
        "price": raw(client.v1.prices.retrieve("price_team_monthly")),
        "product": raw(client.v1.products.retrieve("prod_team")),
        "portal session": raw(
            client.v1.billing_portal.sessions.create({"customer": customer_id, "return_url": "https://app.example"})
        ),
        "meter": meter,
        "meter event summary": raw(summaries)["data"][0],
        "event": raw(events)["data"][0],
    }


@pytest.mark.parametrize("name", list(RESOURCES))
def test_object_carries_every_key_of_stripes_fixture(
    name: str, fixtures: dict[str, Any], built: dict[str, dict[str, Any]]
) -> None:
    # Given the emulator's object and Stripe's published example of the same resource
    resource = RESOURCES[name]
    obj, fixture = built[name], fixtures[resource.fixture]
    assert obj["object"] == fixture["object"]
    # When they are compared key by key
    problems = compare(obj, fixture, resource.sdk_class, resource.nested, resource.optional)
    # Then nothing is missing, nothing is invented, and every value has Stripe's shape
    assert problems == [], f"{name}: " + "; ".join(problems)


def test_keys_allowed_beyond_the_fixture_are_typed_by_the_pinned_sdk() -> None:
    # The allowance is for keys Stripe has (its SDK types them), never for emulator inventions.
    declared = {"lines.data[].pricing": stripe.InvoiceLineItem.Pricing}
    for resource in RESOURCES.values():
        for path, keys in resource.optional.items():
            assert keys <= set(declared[path].__annotations__), (path, keys)


def test_an_event_carries_its_object_as_the_api_returns_it(
    fixtures: dict[str, Any], built: dict[str, dict[str, Any]]
) -> None:
    # Given a customer.created event
    event = built["event"]
    # Then its data is Stripe's (only `object` on a created event) and the object has the customer's keys
    assert set(event["data"]) == set(fixtures["event"]["data"]) == {"object"}
    assert compare(event["data"]["object"], fixtures["customer"], stripe.Customer, ("invoice_settings",)) == []


def test_generation_specific_fields_live_where_stripe_puts_them(
    fixtures: dict[str, Any], built: dict[str, dict[str, Any]]
) -> None:
    sub, inv = built["subscription"], built["invoice"]
    # current_period_* on items, not on the subscription, as in the fixture
    assert "current_period_end" in fixtures["subscription_item"]
    assert "current_period_end" not in fixtures["subscription"]
    assert "current_period_end" in sub["items"]["data"][0]
    assert "current_period_end" not in sub
    # invoice -> subscription through parent.subscription_details
    assert "subscription" in fixtures["invoice"]["parent"]["subscription_details"]
    assert inv["parent"]["subscription_details"]["subscription"] == sub["id"]


# ---- controls: the comparison reports what it should --------------------------------------------------------


def test_control_a_removed_key_is_reported(fixtures: dict[str, Any], built: dict[str, dict[str, Any]]) -> None:
    # Given objects that agree with the fixture, each with one key taken away (top level and nested)
    sub = copy.deepcopy(built["subscription"])
    del sub["billing_cycle_anchor"]
    del sub["items"]["data"][0]["price"]["recurring"]["usage_type"]
    inv = copy.deepcopy(built["invoice"])
    del inv["parent"]["subscription_details"]["subscription"]
    # When they are compared
    sub_problems = compare(sub, fixtures["subscription"], stripe.Subscription, RESOURCES["subscription"].nested)
    invoice = RESOURCES["invoice"]
    inv_problems = compare(inv, fixtures["invoice"], stripe.Invoice, invoice.nested, invoice.optional)
    # Then each removal is named with its path
    assert sub_problems == [
        ".: missing ['billing_cycle_anchor']",
        "items.data[].price.recurring: missing ['usage_type']",
    ]
    assert inv_problems == ["parent.subscription_details: missing ['subscription']"]


def test_control_invented_keys_and_wrong_shapes_are_reported(
    fixtures: dict[str, Any], built: dict[str, dict[str, Any]]
) -> None:
    # Given a customer with an invented key, a list object flattened, and null where Stripe never has null
    cus = copy.deepcopy(built["customer"])
    cus["emulator_note"] = "x"
    cus["created"] = None
    sub = copy.deepcopy(built["subscription"])
    sub["items"] = sub["items"]["data"]
    # When they are compared
    cus_problems = compare(cus, fixtures["customer"], stripe.Customer)
    sub_problems = compare(sub, fixtures["subscription"], stripe.Subscription, ("items",))
    # Then each is reported
    assert cus_problems == [
        ".: not in Stripe's object ['emulator_note']",
        "created: null, but Stripe's created is never null (a number)",
    ]
    assert sub_problems[0] == "items: a list, Stripe's is a list object"


def test_control_missing_fixture_file_fails_unless_skipping_is_asked_for(tmp_path: Path) -> None:
    absent = tmp_path / "fixtures3.json"
    # Without the env var a missing file fails the test (never a silent skip)
    with pytest.raises(Failed, match=SKIP_ENV):
        load_fixtures(absent, env={})
    # With it, and only with it, the comparison is skipped
    with pytest.raises(Skipped):
        load_fixtures(absent, env={SKIP_ENV: "1"})
    with pytest.raises(Failed):
        load_fixtures(absent, env={SKIP_ENV: "0"})
