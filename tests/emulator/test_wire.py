"""Wire format: auth, form encoding, expand, pagination, errors, headers, request log."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import TEST_KEY, make_client


def test_unknown_key_is_401_and_key_never_logged(emu: StripeEmulator) -> None:
    # Given a client with a key that is not a test key
    bad = make_client(emu.url, key="not-a-key")
    # When it calls the API / Then the SDK raises AuthenticationError
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.list()
    # And a test key works, while the log never holds either key
    make_client(emu.url).v1.customers.list()
    assert all("authorization" not in r["headers"] for r in emu.request_log)
    assert TEST_KEY not in repr(emu.request_log)


def test_configured_key_is_accepted() -> None:
    emu = StripeEmulator(api_keys=("custom-key",))
    url = emu.start()
    try:
        assert make_client(url, key="custom-key").v1.customers.list().object == "list"
    finally:
        emu.stop()


def test_seeded_prices_by_lookup_key_with_expanded_product(client: stripe.StripeClient) -> None:
    # When listing prices by lookup key with data.product expanded
    prices = client.v1.prices.list({"lookup_keys": ["team_monthly", "starter_monthly"], "expand": ["data.product"]})
    # Then both seeded prices come back with their product objects
    by_key = {p.lookup_key: p for p in prices.data}
    assert set(by_key) == {"team_monthly", "starter_monthly"}
    assert by_key["team_monthly"].product.name == "Team"
    assert by_key["team_monthly"].unit_amount == 2900
    assert by_key["team_monthly"].recurring.interval == "month"


def test_nested_form_params_and_metadata(client: stripe.StripeClient, emu: StripeEmulator) -> None:
    cus = client.v1.customers.create({"email": "a@example.com", "metadata": {"user_id": "u1", "plan": "x"}})
    assert cus.metadata.to_dict() == {"user_id": "u1", "plan": "x"}
    # An empty value unsets a metadata key, like Stripe
    updated = client.v1.customers.update(cus.id, {"metadata": {"plan": ""}})
    assert updated.metadata.to_dict() == {"user_id": "u1"}
    logged = emu.requests_to("/v1/customers", "POST")[0]
    assert logged["params"]["metadata"] == {"user_id": "u1", "plan": "x"}


def test_pagination_forward_and_backward(client: stripe.StripeClient) -> None:
    # Given 7 customers
    ids = [client.v1.customers.create({"email": f"c{i}@example.com"}).id for i in range(7)]
    newest_first = list(reversed(ids))
    # When paging with limit=3
    page1 = client.v1.customers.list({"limit": 3})
    page2 = client.v1.customers.list({"limit": 3, "starting_after": page1.data[-1].id})
    page3 = client.v1.customers.list({"limit": 3, "starting_after": page2.data[-1].id})
    # Then pages are disjoint, newest first, and has_more flips at the end
    assert [c.id for c in page1.data + page2.data + page3.data] == newest_first
    assert page1.has_more
    assert page2.has_more
    assert not page3.has_more
    assert page1.url == "/v1/customers"
    back = client.v1.customers.list({"limit": 2, "ending_before": page2.data[0].id})
    assert [c.id for c in back.data] == newest_first[1:3]
    # And the SDK's auto-pagination walks everything
    assert [c.id for c in client.v1.customers.list({"limit": 2}).auto_paging_iter()] == newest_first


def test_errors_map_to_sdk_exceptions(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_nope")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.checkout.sessions.create({"mode": "subscription", "success_url": "https://x"})
    assert bad.value.http_status == 400
    assert bad.value.param == "line_items"
    with pytest.raises(stripe.InvalidRequestError) as limit:
        client.v1.customers.list({"limit": 500})
    assert limit.value.param == "limit"


def test_deleted_customer_is_404(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create({"email": "gone@example.com"})
    assert client.v1.customers.delete(cus.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve(cus.id)
    assert err.value.http_status == 404


def test_headers_request_id_and_version_echo(emu: StripeEmulator) -> None:
    resp = requests.get(
        emu.url + "/v1/customers",
        headers={"Authorization": "Bearer " + TEST_KEY, "Stripe-Version": "2026-10-28.endive"},
        timeout=5,
    )
    assert resp.headers["Request-Id"].startswith("req_")
    assert resp.headers["Stripe-Version"] == "2026-10-28.endive"
    body = resp.json()
    assert body["object"] == "list"
    assert body["has_more"] is False


def test_request_log_over_http(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    client.v1.customers.create({"email": "log@example.com"}, {"idempotency_key": "log-1"})
    rows = requests.get(emu.url + "/_emulator/requests", params={"path": "/v1/customers"}, timeout=5).json()["data"]
    assert rows[0]["method"] == "POST"
    assert rows[0]["idempotency_key"] == "log-1"
    assert rows[0]["params"] == {"email": "log@example.com"}
    assert rows[0]["status"] == 200


def test_state_inspection_and_reset(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    client.v1.customers.create({"email": "s@example.com"})
    state = requests.get(emu.url + "/_emulator/state/customer", timeout=5).json()
    assert [c["email"] for c in state["customer"]] == ["s@example.com"]
    requests.post(emu.url + "/_emulator/reset", timeout=5)
    assert client.v1.customers.list().data == []
    assert client.v1.prices.retrieve("price_team_monthly").lookup_key == "team_monthly"
