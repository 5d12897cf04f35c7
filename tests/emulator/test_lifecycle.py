"""Clock-driven lifecycle: renewals, dunning, trials, cancellation, incomplete expiry; portal; test clocks."""

from __future__ import annotations

import re

import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

DAY = 86400


def checkout(client: stripe.StripeClient, card: str = "4242424242424242", **extra: object) -> str:
    params: dict = {
        "mode": "subscription",
        "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
        "success_url": "https://x/ok",
    }
    params.update(extra)
    cs = client.v1.checkout.sessions.create(params)
    requests.post(cs.url, data={"card": card}, allow_redirects=False, timeout=10)
    return client.v1.checkout.sessions.retrieve(cs.id).subscription


def types_since(client: stripe.StripeClient, ts: int) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list({"created": {"gte": ts}, "limit": 100}).data)]


def test_renewal_pays_invoice(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    sub_id = checkout(client)
    end = client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end
    emu.clock.advance_to(end + 60)
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.status == "active"
    assert sub["items"].data[0].current_period_start == end
    assert sub.latest_invoice.billing_reason == "subscription_cycle"
    assert sub.latest_invoice.status == "paid"
    assert sub.latest_invoice.amount_paid == 900
    assert len(client.v1.invoices.list({"subscription": sub_id}).data) == 2


def test_renewal_decline_goes_past_due_then_unpaid(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Given an active subscription whose customer's default card later fails
    sub_id = checkout(client)
    sub = client.v1.subscriptions.retrieve(sub_id)
    requests.post(emu.url + f"/_emulator/customers/{sub.customer}/card", json={"card": "decline_on_charge"}, timeout=5)
    # When the period ends
    emu.clock.advance_to(sub["items"].data[0].current_period_end + 60)
    # Then the renewal fails and the subscription is past_due
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"
    assert client.v1.events.list({"type": "invoice.payment_failed"}).data
    # When all dunning retries (3 x 3 days) fail
    emu.clock.advance(10 * DAY)
    # Then it is marked unpaid
    assert client.v1.subscriptions.retrieve(sub_id).status == "unpaid"
    assert client.v1.subscriptions.list({"status": "unpaid"}).data[0].id == sub_id


def test_trial_will_end_then_active(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    start = emu.clock.now_int()
    sub_id = checkout(client, subscription_data={"trial_period_days": 7})
    emu.clock.advance(4 * DAY + 60)
    assert "customer.subscription.trial_will_end" in types_since(client, start)
    assert client.v1.subscriptions.retrieve(sub_id).status == "trialing"
    emu.clock.advance(3 * DAY)
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.status == "active"
    assert sub.latest_invoice.amount_paid == 900


def test_trial_end_with_failing_card_goes_past_due(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    sub_id = checkout(client, card="4000000000000341", subscription_data={"trial_period_days": 3})
    emu.clock.advance(3 * DAY + 60)
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"


def test_cancel_at_period_end(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    sub_id = checkout(client)
    sub = client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True, "metadata": {"why": "test"}})
    assert sub.cancel_at_period_end is True
    upd = client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert upd.data.previous_attributes.cancel_at_period_end is False
    emu.clock.advance_to(sub["items"].data[0].current_period_end + 1)
    assert client.v1.subscriptions.retrieve(sub_id).status == "canceled"
    assert client.v1.events.list({"type": "customer.subscription.deleted"}).data[0].data.object.id == sub_id


def test_cancel_now_and_list_filters(client: stripe.StripeClient) -> None:
    sub_id = checkout(client)
    sub = client.v1.subscriptions.retrieve(sub_id)
    assert client.v1.subscriptions.list({"customer": sub.customer}).data[0].id == sub_id
    assert client.v1.subscriptions.cancel(sub_id).status == "canceled"
    assert client.v1.subscriptions.list({"customer": sub.customer}).data == []
    assert client.v1.subscriptions.list({"status": "canceled"}).data[0].id == sub_id


def test_incomplete_expires_after_23h(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    cs = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": "price_starter_monthly"}], "success_url": "https://x"}
    )
    requests.post(cs.url, data={"card": "4000002500003155"}, allow_redirects=False, timeout=10)
    sub = client.v1.subscriptions.list({"status": "incomplete"}).data[0]
    emu.clock.advance(22 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    emu.clock.advance(3600 + 60)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete_expired"


def test_events_list_filters(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    start = emu.clock.now_int()
    checkout(client)
    types = client.v1.events.list({"types": ["invoice.paid", "checkout.session.completed"]}).data
    assert sorted(e.type for e in types) == ["checkout.session.completed", "invoice.paid"]
    assert client.v1.events.list({"created": {"gte": start + 10 * DAY}}).data == []
    first = client.v1.events.list({"type": "invoice.paid"}).data[0]
    assert client.v1.events.retrieve(first.id).type == "invoice.paid"


def test_portal_cancel_resume_switch_update_card(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    sub_id = checkout(client)
    sub = client.v1.subscriptions.retrieve(sub_id)
    session = client.v1.billing_portal.sessions.create({"customer": sub.customer, "return_url": "https://x/account"})
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "price_team_monthly" in page.text
    action = session.url + "/action"
    requests.post(action, data={"action": "cancel", "subscription": sub_id}, timeout=5)
    assert client.v1.subscriptions.retrieve(sub_id).cancel_at_period_end is True
    requests.post(action, data={"action": "resume", "subscription": sub_id}, timeout=5)
    assert client.v1.subscriptions.retrieve(sub_id).cancel_at_period_end is False
    requests.post(action, data={"action": "switch", "subscription": sub_id, "price": "price_team_monthly"}, timeout=5)
    assert client.v1.subscriptions.retrieve(sub_id)["items"].data[0].price.id == "price_team_monthly"
    bad = requests.post(
        action, data={"action": "switch", "subscription": sub_id, "price": "price_api_tokens"}, timeout=5
    )
    assert bad.status_code == 400
    requests.post(action, data={"action": "update_card", "card": "4000000000000341"}, timeout=5)
    pm = client.v1.customers.retrieve(sub.customer).invoice_settings.default_payment_method
    assert client.v1.payment_methods.retrieve(pm).card.last4 == "0341"


def test_portal_flow_redirects_after_completion(client: stripe.StripeClient) -> None:
    sub_id = checkout(client)
    sub = client.v1.subscriptions.retrieve(sub_id)
    session = client.v1.billing_portal.sessions.create(
        {
            "customer": sub.customer,
            "return_url": "https://x/account",
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": sub_id},
                "after_completion": {"type": "redirect", "redirect": {"return_url": "https://x/done"}},
            },
        }
    )
    assert session.flow.type == "subscription_cancel"
    page = requests.get(session.url, timeout=5).text
    assert re.search(r"value='cancel'", page)
    resp = requests.post(
        session.url + "/action", data={"action": "cancel", "subscription": sub_id}, allow_redirects=False, timeout=5
    )
    assert resp.headers["Location"] == "https://x/done"


def test_portal_configuration_and_flow_validation(client: stripe.StripeClient) -> None:
    conf = client.v1.billing_portal.configurations.create(
        {"features": {"subscription_update": {"enabled": False}, "payment_method_update": {"enabled": True}}}
    )
    cus = client.v1.customers.create({"email": "p@example.com"})
    s = client.v1.billing_portal.sessions.create(
        {"customer": cus.id, "configuration": conf.id, "flow_data": {"type": "payment_method_update"}}
    )
    assert s.configuration == conf.id
    assert "bpc_default" in [c.id for c in client.v1.billing_portal.configurations.list().data]


def test_test_clock_advances_emulator_time(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    now = emu.clock.now_int()
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": now})
    client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": now + 2 * DAY})
    assert emu.clock.now() >= now + 2 * DAY
    resp = requests.post(emu.url + "/_emulator/clock/advance", json={"seconds": 3600}, timeout=5).json()
    assert resp["now"] >= now + 2 * DAY + 3600
