"""Where the emulator used to differ from Stripe (issue 15, point 2): each test reproduced the difference first.

Stripe's behaviour relied on: a trial keeps its end when the price changes (the period during a trial is the trial);
the 3155 test card needs authentication on-session only, a saved one succeeds off-session (renewals); the secret key
goes as Bearer or as Basic user name (``curl -u sk_test_...:``); only the account's own keys are accepted; unknown
parameters are a 400 ``parameter_unknown`` naming the parameter.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import TEST_KEY, make_client
from .test_lifecycle import DAY, checkout

AUTH_CARD = "4000002500003155"


# ---- trials and price changes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("price", ["price_team_yearly", "price_team_monthly"])
def test_a_trialing_subscription_switched_to_another_price_becomes_active_when_its_trial_ends(
    emu: StripeEmulator, client: stripe.StripeClient, price: str
) -> None:
    # Given a subscription trialing for 7 days
    sub_id = checkout(client, subscription_data={"trial_period_days": 7})
    sub = client.v1.subscriptions.retrieve(sub_id)
    trial_end = sub.trial_end
    # When it switches to a yearly price (the monthly switch is the control) during the trial
    item = sub["items"].data[0]
    switched = client.v1.subscriptions.update(sub_id, {"items": [{"id": item.id, "price": price}]})
    # Then the trial still ends when it did
    assert switched.status == "trialing"
    assert switched["items"].data[0].current_period_end == trial_end
    # And when the clock passes the trial end, it is active, billed for the new price's first period
    emu.clock.advance_to(trial_end + 60)
    after = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert after.status == "active"
    assert after.latest_invoice.status == "paid"
    assert after.latest_invoice.amount_paid == (29000 if price.endswith("yearly") else 2900)
    period = after["items"].data[0]
    assert period.current_period_start == trial_end
    assert period.current_period_end - trial_end >= (365 if price.endswith("yearly") else 28) * DAY


# ---- the 3155 card ------------------------------------------------------------------------------------------------


def test_a_saved_3155_card_pays_off_session_renewals(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Given a subscription paid on-session with the 3155 card, which asked for authentication there
    cs = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
            "success_url": "https://x/ok",
        }
    )
    first = requests.post(cs.url, data={"card": AUTH_CARD}, allow_redirects=False, timeout=10)
    assert "authentication" in first.text  # on-session: Stripe asks the customer
    requests.post(
        cs.url + "/authenticate", data={"action": "complete_authentication"}, allow_redirects=False, timeout=10
    )
    sub_id = client.v1.checkout.sessions.retrieve(cs.id).subscription
    assert client.v1.subscriptions.retrieve(sub_id).status == "active"
    # When the period ends and Stripe renews off-session with the saved card
    end = client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end
    emu.clock.advance_to(end + 60)
    # Then the renewal is paid without asking anyone, and the subscription stays active
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.latest_invoice.billing_reason == "subscription_cycle"
    assert sub.latest_invoice.status == "paid"
    assert sub.status == "active"


def test_a_3155_card_saved_during_a_trial_pays_the_first_invoice_at_trial_end(
    emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    # Given a trial started with the 3155 card (nothing charged on-session)
    sub_id = checkout(client, card=AUTH_CARD, subscription_data={"trial_period_days": 3})
    # When the trial ends (an off-session charge)
    emu.clock.advance(3 * DAY + 60)
    # Then the first invoice is paid and the subscription active
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.status == "active"
    assert sub.latest_invoice.status == "paid"


def test_an_on_session_invoice_payment_with_the_3155_card_still_needs_authentication(
    emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    # Given an open invoice of a customer whose default card is 3155 (a trial ended without paying: control setup)
    sub_id = checkout(client, subscription_data={"trial_period_days": 3})
    sub = client.v1.subscriptions.retrieve(sub_id)
    requests.post(emu.url + f"/_emulator/customers/{sub.customer}/card", json={"card": "decline_on_charge"}, timeout=5)
    emu.clock.advance(3 * DAY + 60)
    invoice = client.v1.subscriptions.retrieve(sub_id).latest_invoice
    requests.post(emu.url + f"/_emulator/customers/{sub.customer}/card", json={"card": AUTH_CARD}, timeout=5)
    # When it is paid on-session (off_session=false)
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(str(invoice), {"off_session": False})
    # Then it is still open; paid off-session (Stripe's default for this call) it succeeds
    assert client.v1.invoices.retrieve(str(invoice)).status == "open"
    assert client.v1.invoices.pay(str(invoice)).status == "paid"


# ---- authentication -----------------------------------------------------------------------------------------------


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_basic_auth_with_the_key_as_user_name_is_accepted(emu: StripeEmulator) -> None:
    # When calling like `curl -u sk_test_...:` (requests builds the same header)
    by_curl_form = requests.get(emu.url + "/v1/customers", auth=(TEST_KEY, ""), timeout=5)
    by_header = requests.get(emu.url + "/v1/customers", headers=basic(TEST_KEY), timeout=5)
    # Then both are answered like a Bearer request
    assert by_curl_form.status_code == 200, by_curl_form.text
    assert by_header.json()["object"] == "list"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_dash_u_with_the_key_is_accepted(emu: StripeEmulator) -> None:
    # The README's form, verbatim: `curl -u sk_test_...:`
    out = subprocess.run(
        ["curl", "-s", "-u", f"{TEST_KEY}:", emu.url + "/v1/customers"], capture_output=True, timeout=10, check=True
    )
    assert json.loads(out.stdout)["object"] == "list"


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
def test_a_test_key_the_account_does_not_have_gets_stripes_401(emu: StripeEmulator, scheme: str) -> None:
    # Given a well-formed test key that is not one of the account's keys
    other = "sk" + "_test_" + "someoneelse0000000000wxyz"
    headers = basic(other) if scheme == "basic" else {"Authorization": f"Bearer {other}"}
    # When it calls the API
    response = requests.get(emu.url + "/v1/customers", headers=headers, timeout=5)
    # Then the answer is Stripe's 401: the key masked but for its prefix and last four, no code
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Invalid API Key provided: " + "sk" + "_test_" + "*" * 21 + "wxyz",
            "type": "invalid_request_error",
        }
    }
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Stripe"'
    assert other not in response.text


def test_no_key_gets_stripes_401_and_the_sdk_raises_authentication_error(emu: StripeEmulator) -> None:
    response = requests.get(emu.url + "/v1/customers", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You did not provide an API key.")
    with pytest.raises(stripe.AuthenticationError):
        make_client(emu.url, key="sk" + "_test_" + "unknown").v1.customers.list()


def test_a_restricted_key_is_accepted_only_when_configured() -> None:
    restricted = "rk" + "_test_" + "configured"
    emu = StripeEmulator(api_keys=(restricted,))
    url = emu.start()
    try:
        assert make_client(url, key=restricted).v1.customers.list().object == "list"
        with pytest.raises(stripe.AuthenticationError):
            make_client(url, key="rk" + "_test_" + "other").v1.customers.list()
    finally:
        emu.stop()


# ---- unknown parameters --------------------------------------------------------------------------------------------


@pytest.mark.plants_invalid_parameters
def test_an_unknown_parameter_is_a_400_naming_it(emu: StripeEmulator) -> None:
    # When creating a customer with a misspelled parameter
    response = requests.post(emu.url + "/v1/customers", auth=(TEST_KEY, ""), data={"emial": "a@example.com"}, timeout=5)
    # Then Stripe's parameter_unknown error names it, and nothing was created
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "parameter_unknown",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
            "message": "Received unknown parameter: emial",
            "param": "emial",
            "type": "invalid_request_error",
        }
    }
    assert requests.get(emu.url + "/v1/customers", auth=(TEST_KEY, ""), timeout=5).json()["data"] == []


@pytest.mark.plants_invalid_parameters
def test_an_unknown_nested_parameter_is_named_with_its_path(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(
            {  # type: ignore[typeddict-unknown-key]
                "mode": "subscription",
                "line_items": [{"price": "price_starter_monthly", "quantity": 1, "quantiy": 2}],
                "success_url": "https://x/ok",
            }
        )
    assert refused.value.http_status == 400
    assert refused.value.code == "parameter_unknown"
    assert refused.value.param == "line_items[0][quantiy]"


def test_known_parameters_pass(client: stripe.StripeClient) -> None:
    # Control: the same calls spelled right succeed
    customer = client.v1.customers.create({"email": "a@example.com", "metadata": {"any_key": "is fine"}})
    assert customer.email == "a@example.com"
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
            "success_url": "https://x/ok",
            "expand": ["customer"],
        }
    )
    assert session.object == "checkout.session"


@pytest.mark.plants_invalid_parameters
def test_a_value_of_the_wrong_type_is_a_400_naming_it(emu: StripeEmulator) -> None:
    # When an integer parameter gets a word, or a string parameter a hash
    cases = {
        "balance": ({"balance": "lots"}, "parameter_invalid_integer"),
        "email": ({"email[first]": "a@example.com"}, "parameter_invalid_string"),
    }
    for param, (data, code) in cases.items():
        response = requests.post(emu.url + "/v1/customers", auth=(TEST_KEY, ""), data=data, timeout=5)
        # Then the 400 names the parameter and the kind of value it wanted
        assert response.status_code == 400
        assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (param, code)
    # Control: the right types pass
    ok = requests.post(emu.url + "/v1/customers", auth=(TEST_KEY, ""), data={"balance": "-500"}, timeout=5)
    assert ok.status_code == 200, ok.text


@pytest.mark.plants_invalid_parameters
def test_a_missing_required_parameter_is_a_400_naming_it(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing.meter_events.create({"event_name": "api_tokens"})  # type: ignore[typeddict-item]
    assert (refused.value.code, refused.value.param) == ("parameter_missing", "payload")


def test_a_closed_enum_refuses_other_values() -> None:
    from typing import Literal, NotRequired, TypedDict

    from devstack.stripe_emulator.errors import StripeError
    from devstack.stripe_emulator.sdk_params import check_against

    # The functional form keeps real annotations (this module's annotations are strings)
    Shape = TypedDict("Shape", {"kind": Literal["a", "b"], "size": NotRequired[int]})  # noqa: UP013

    check_against({"kind": "a", "size": "3"}, Shape)  # control
    with pytest.raises(StripeError) as refused:
        check_against({"kind": "c"}, Shape)
    assert refused.value.body()["error"] == {
        "type": "invalid_request_error",
        "message": "Invalid kind: must be one of a, b",
        "code": "parameter_invalid_enum",
        "param": "kind",
    }
    with pytest.raises(StripeError) as missing:
        check_against({"size": "3"}, Shape)
    assert missing.value.param == "kind"


@pytest.mark.plants_invalid_parameters
def test_a_parameter_stripe_previews_is_unknown_without_the_preview_version(client: stripe.StripeClient) -> None:
    params = {
        "mode": "subscription",
        "success_url": "https://x/ok",
        "checkout_items": [
            {"type": "pricing_plan_subscription_item", "pricing_plan_subscription_item": {"pricing_plan": "bpp_x"}}
        ],
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "checkout_items")


@pytest.mark.parametrize("version", ["2099-01-01.future", "yesterday", "2026-10-28.endive; drop table"])
def test_a_stripe_version_the_emulator_cannot_know_is_refused(emu: StripeEmulator, version: str) -> None:
    response = requests.get(
        emu.url + "/v1/customers", auth=(TEST_KEY, ""), headers={"Stripe-Version": version}, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"Invalid Stripe API version: {version}"


@pytest.mark.parametrize(
    "version", [stripe.api_version, "2025-09-30.preview;checkout_product_catalog_preview=v1", "2024-06-20"]
)
def test_known_stripe_versions_pass(emu: StripeEmulator, version: str) -> None:
    response = requests.get(
        emu.url + "/v1/customers", auth=(TEST_KEY, ""), headers={"Stripe-Version": version}, timeout=5
    )
    assert response.status_code == 200, response.text


@pytest.mark.plants_invalid_parameters
def test_control_a_planted_unknown_parameter_is_what_fails_a_test(client: stripe.StripeClient) -> None:
    """tests/conftest.py fails every test (not marked like this one) during which the emulator refused a
    parameter: here, the refusal it reads is recorded, and a clean request records nothing."""
    from devstack.stripe_emulator.sdk_params import VIOLATIONS

    before = len(VIOLATIONS)
    client.v1.customers.create({"email": "a@example.com"})
    assert VIOLATIONS[before:] == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"emial": "a@example.com"})  # type: ignore[typeddict-unknown-key]
    assert VIOLATIONS[before:] == [
        {"method": "POST", "path": "/v1/customers", "code": "parameter_unknown", "param": "emial"}
    ]
