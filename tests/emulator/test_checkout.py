"""Checkout: session creation rules, the hosted page over HTTP, signed deliveries (snapshot and thin)."""

from __future__ import annotations

import json

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import TEST_KEY, Receiver

SUCCESS = "https://app.example.com/welcome?session_id={CHECKOUT_SESSION_ID}"


def new_session(client: stripe.StripeClient, **extra: object) -> stripe.checkout.Session:
    params: dict = {
        "mode": "subscription",
        "line_items": [{"price": "price_team_monthly", "quantity": 2}],
        "success_url": SUCCESS,
        "cancel_url": "https://app.example.com/pricing",
        "client_reference_id": "user-1",
        "metadata": {"user_id": "user-1"},
        "subscription_data": {"metadata": {"user_id": "user-1"}},
        "allow_promotion_codes": True,
        "automatic_tax": {"enabled": True},
    }
    params.update(extra)
    return client.v1.checkout.sessions.create(params)


def test_hosted_checkout_delivers_verified_events_in_order_with_retries(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given a webhook endpoint (snapshot) and a thin event destination, both failing the first 2 attempts
    receiver.fail_first = 2
    we = client.v1.webhook_endpoints.create({"url": receiver.url + "/snap", "enabled_events": ["*"]})
    dest = client.v2.core.event_destinations.create(
        {
            "name": "thin",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": ["v1.checkout.session.completed", "v1.customer.subscription.created"],
            "webhook_endpoint": {"url": receiver.url + "/thin"},
            "include": ["webhook_endpoint.signing_secret"],
        }
    )
    thin_secret = dest.webhook_endpoint.signing_secret
    assert we.secret.startswith("whsec" + "_")
    cs = new_session(client)
    # When the customer opens the hosted page and pays with 4242
    page = requests.get(cs.url, timeout=5)
    assert page.status_code == 200
    assert "Pay" in page.text
    done = requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    # Then Checkout redirects with 303 to success_url with the session id substituted
    assert done.status_code == 303
    assert done.headers["Location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", cs.id)
    # And every delivery is eventually acknowledged after retries
    assert emu.events.wait_idle(10)
    snap = [r for r in receiver.accepted() if r["path"] == "/snap"]
    thin = [r for r in receiver.accepted() if r["path"] == "/thin"]
    events = [stripe.Webhook.construct_event(r["body"].decode(), r["sig"], we.secret) for r in snap]
    types = [e.type for e in events]
    assert types == [
        "customer.created",
        "payment_method.attached",
        "customer.updated",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "entitlements.active_entitlement_summary.updated",
        "checkout.session.completed",
    ]
    assert all(receiver.attempts[json.loads(r["body"])["id"]] == 3 for r in snap)
    completed = events[-1]
    assert completed.data.object.client_reference_id == "user-1"
    summary = events[-2].data.object
    assert [e.lookup_key for e in summary.entitlements.data] == ["api_access", "dashboard", "team_seats"]
    assert completed.livemode is False
    assert completed.api_version == stripe.api_version
    assert completed.request.id is None  # page actions are not API requests
    updated = events[-3]
    assert updated.data.previous_attributes.status == "incomplete"
    assert updated.data.object.status == "active"
    notes = [client.parse_event_notification(r["body"], r["sig"], thin_secret) for r in thin]
    assert [n.type for n in notes] == ["v1.customer.subscription.created", "v1.checkout.session.completed"]
    fetched = notes[1].fetch_related_object()
    assert fetched.id == cs.id
    assert fetched.status == "complete"
    assert notes[1].fetch_event().id == notes[1].id
    # And a snapshot payload is rejected by the thin parser and vice versa
    with pytest.raises(ValueError, match="thin event"):
        client.parse_event_notification(snap[0]["body"], snap[0]["sig"], we.secret)
    # And the state reflects the payment: subscription active, items carry the period
    session = client.v1.checkout.sessions.retrieve(cs.id, {"expand": ["subscription", "subscription.latest_invoice"]})
    sub = session.subscription
    assert sub.status == "active"
    assert sub.metadata.to_dict() == {"user_id": "user-1"}
    assert sub["items"].data[0].current_period_end > sub["items"].data[0].current_period_start
    assert sub.latest_invoice.amount_paid == 5800
    assert sub.latest_invoice.parent.subscription_details.subscription == sub.id
    # And no event is pending any more
    assert client.v1.events.list({"delivery_success": False}).data == []


def test_checkout_waits_for_completed_delivery_before_redirecting(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given an endpoint listening to checkout.session.completed that takes 300 ms to answer
    receiver.delay_s = 0.3
    client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["checkout.session.completed"]})
    cs = new_session(client)
    # When paying
    resp = requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    # Then by the time the redirect arrives the endpoint already had the event
    assert resp.status_code == 303
    got = receiver.accepted()
    assert [json.loads(r["body"])["type"] for r in got] == ["checkout.session.completed"]


def test_failed_deliveries_are_listed_by_delivery_success_false(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    receiver.fail_first = 100
    emu.events.max_attempts = 2
    try:
        client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["customer.created"]})
        cus = client.v1.customers.create({"email": "f@example.com"}, {"idempotency_key": "f-1"})
        assert emu.events.wait_idle(5)
        failed = client.v1.events.list({"delivery_success": False})
        assert [e.data.object.id for e in failed.data] == [cus.id]
        assert failed.data[0].pending_webhooks == 1
        assert failed.data[0].request.idempotency_key == "f-1"
        assert failed.data[0].request.id.startswith("req_")
        ok = client.v1.events.list({"delivery_success": True, "type": "customer.created"})
        assert ok.data == []
    finally:
        emu.events.max_attempts = 4


def test_trial_shorter_than_48h_is_rejected(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        new_session(client, subscription_data={"trial_period_days": 1})
    assert err.value.param == "subscription_data[trial_period_days]"


def test_trial_checkout_starts_trialing_without_charge(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    cs = new_session(client, subscription_data={"trial_period_days": 14, "metadata": {"k": "v"}})
    requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    session = client.v1.checkout.sessions.retrieve(cs.id, {"expand": ["subscription"]})
    assert session.payment_status == "no_payment_required"
    assert session.subscription.status == "trialing"
    assert session.subscription.trial_end - session.subscription.trial_start == 14 * 86400


def test_line_items_list_and_expand(client: stripe.StripeClient) -> None:
    cs = new_session(client)
    items = client.v1.checkout.sessions.line_items.list(cs.id)
    assert [(i.price.id, i.quantity, i.amount_total) for i in items.data] == [("price_team_monthly", 2, 5800)]
    expanded = client.v1.checkout.sessions.retrieve(cs.id, {"expand": ["line_items"]})
    assert expanded.line_items.data[0].price.lookup_key == "team_monthly"
    assert expanded.allow_promotion_codes is True
    assert expanded.automatic_tax.enabled is True


def test_expire_session(client: stripe.StripeClient) -> None:
    cs = new_session(client)
    assert client.v1.checkout.sessions.expire(cs.id).status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(cs.id)
    assert requests.get(cs.url, timeout=5).status_code == 410
    assert client.v1.events.list({"type": "checkout.session.expired"}).data[0].data.object.id == cs.id


def test_decline_keeps_session_open(client: stripe.StripeClient) -> None:
    cs = new_session(client)
    resp = requests.post(cs.url, data={"card": "4000000000000002"}, allow_redirects=False, timeout=10)
    assert resp.status_code == 402
    assert "declined" in resp.text
    assert client.v1.checkout.sessions.retrieve(cs.id).status == "open"
    assert client.v1.subscriptions.list().data == []


def test_requires_action_then_authentication(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Given a card that needs 3DS
    cs = new_session(client)
    step1 = requests.post(cs.url, data={"card": "4000002500003155"}, allow_redirects=False, timeout=10)
    # Then the subscription is incomplete and invoice.payment_action_required was emitted
    assert step1.status_code == 200
    assert "authentication" in step1.text
    sub = client.v1.subscriptions.list({"status": "incomplete"}).data[0]
    assert client.v1.events.list({"type": "invoice.payment_action_required"}).data
    # When the second step completes authentication
    step2 = requests.post(
        cs.url + "/authenticate", data={"action": "complete_authentication"}, allow_redirects=False, timeout=10
    )
    # Then the subscription is active and the session completes with a redirect
    assert step2.status_code == 303
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.checkout.sessions.retrieve(cs.id).status == "complete"


@pytest.mark.plants_invalid_parameters  # checkout_items without its preview version
def test_pricing_plan_session_needs_preview_version(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    params = {
        "mode": "subscription",
        "success_url": SUCCESS,
        "checkout_items": [
            {
                "type": "pricing_plan_subscription_item",
                "pricing_plan_subscription_item": {"pricing_plan": "bpp_test_usage_pro"},
            }
        ],
    }
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params)
    assert err.value.param == "checkout_items"
    dest = client.v2.core.event_destinations.create(
        {
            "name": "pp",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": ["v2.billing.pricing_plan_subscription.servicing_activated"],
            "webhook_endpoint": {"url": receiver.url},
            "include": ["webhook_endpoint.signing_secret"],
        }
    )
    cs = client.v1.checkout.sessions.create(params, {"stripe_version": "2025-09-30.preview"})
    assert cs.url.startswith(emu.url + "/c/pay/")
    assert emu.requests_to("/v1/checkout/sessions", "POST")[-1]["stripe_version"] == "2025-09-30.preview"
    resp = requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    assert resp.status_code == 303
    got = receiver.wait_for(1)
    note = client.parse_event_notification(got[0]["body"], got[0]["sig"], dest.webhook_endpoint.signing_secret)
    assert note.type == "v2.billing.pricing_plan_subscription.servicing_activated"
    related = requests.get(
        emu.url + "/v2/core/events/" + note.id, headers={"Authorization": "Bearer " + TEST_KEY}, timeout=5
    ).json()["related_object"]
    assert related["type"] == "v2.billing.pricing_plan_subscription"


def test_webhook_endpoint_crud(client: stripe.StripeClient) -> None:
    we = client.v1.webhook_endpoints.create({"url": "http://127.0.0.1:9/x", "enabled_events": ["invoice.paid"]})
    assert [w.id for w in client.v1.webhook_endpoints.list().data] == [we.id]
    assert "secret" not in client.v1.webhook_endpoints.retrieve(we.id)
    assert client.v1.webhook_endpoints.delete(we.id).deleted is True
    assert client.v1.webhook_endpoints.list().data == []
