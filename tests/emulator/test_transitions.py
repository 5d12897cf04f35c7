"""Lifecycle transitions and their signed events: upcoming invoices, dunning end, customer deletion, session
expiry, async (bank debit) Checkout, paused subscriptions, pause_collection, pending updates, entitlements."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import Hooks

DAY = 86400


def paying_customer(client: stripe.StripeClient, pm: str = "pm_card_visa") -> str:
    cus = client.v1.customers.create({"email": "t@example.com", "payment_method": pm})
    pm_id = client.v1.payment_methods.list({"customer": cus.id}).data[0].id
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": pm_id}})
    return cus.id


def subscribe(client: stripe.StripeClient, customer: str, price: str = "price_starter_monthly", **extra: object) -> str:
    params: dict = {"customer": customer, "items": [{"price": price}]}
    params.update(extra)
    return client.v1.subscriptions.create(params).id


def set_card(emu: StripeEmulator, customer: str, card: str) -> None:
    requests.post(emu.url + f"/_emulator/customers/{customer}/card", json={"card": card}, timeout=5)


def test_invoice_upcoming_is_sent_the_configured_days_before_renewal(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    # Given an active monthly subscription
    sub = client.v1.subscriptions.retrieve(subscribe(client, paying_customer(client)))
    end = sub["items"].data[0].current_period_end
    # When the clock reaches 8 days before renewal: nothing yet; at 7 days before: invoice.upcoming
    emu.clock.advance_to(end - 8 * DAY)
    assert "invoice.upcoming" not in hooks.snapshot_types()
    emu.clock.advance_to(end - 7 * DAY + 1)
    upcoming = [e for e in hooks.snapshot_events() if e.type == "invoice.upcoming"]
    assert len(upcoming) == 1
    # Then it previews the next period's invoice (no id, not saved)
    inv = upcoming[0].data.object
    assert inv.to_dict()["id"] is None
    assert inv.amount_due == 900
    assert inv.period_start == end
    assert inv.parent.subscription_details.subscription == sub.id
    # And after the renewal the next one follows, with the knob changing the lead time
    emu.billing.configure(invoice_upcoming_days=3)
    emu.clock.advance_to(end + 60)
    next_end = client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
    emu.clock.advance_to(next_end - 4 * DAY)
    assert hooks.snapshot_types().count("invoice.upcoming") == 1
    emu.clock.advance_to(next_end - 3 * DAY + 1)
    assert hooks.snapshot_types().count("invoice.upcoming") == 2


@pytest.mark.parametrize(
    ("action", "mark", "status", "invoice_status"),
    [("unpaid", False, "unpaid", "open"), ("canceled", True, "canceled", "uncollectible")],
)
def test_dunning_end_action_and_mark_uncollectible(
    emu: StripeEmulator,
    client: stripe.StripeClient,
    hooks: Hooks,
    action: str,
    mark: bool,
    status: str,
    invoice_status: str,
) -> None:
    # Given the dunning settings and a subscription whose card starts failing
    requests.post(
        emu.url + "/_emulator/settings",
        json={"dunning_end_action": action, "dunning_mark_uncollectible": mark},
        timeout=5,
    )
    cus = paying_customer(client)
    sub_id = subscribe(client, cus)
    set_card(emu, cus, "decline_on_charge")
    end = client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end
    # When the renewal and all 3 retries fail
    emu.clock.advance_to(end + 10 * DAY)
    # Then the subscription ends in the configured status and the invoice follows the invoice setting
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.status == status
    assert sub.latest_invoice.status == invoice_status
    types = hooks.snapshot_types()
    assert types.count("invoice.payment_failed") == 4
    assert "invoice.updated" in types
    assert ("invoice.marked_uncollectible" in types) is mark
    if action == "canceled":
        deleted = [e for e in hooks.snapshot_events() if e.type == "customer.subscription.deleted"]
        assert deleted[0].data.object.cancellation_details.reason == "payment_failed"
        assert sub.latest_invoice.status_transitions.marked_uncollectible_at is not None
    # And the defaults come back after a reset
    emu.reset()
    assert emu.billing.settings()["dunning_end_action"] == "unpaid"


def test_customer_deleted_cancels_subscriptions_and_entitlements(client: stripe.StripeClient, hooks: Hooks) -> None:
    cus = paying_customer(client)
    sub_id = subscribe(client, cus, "price_team_monthly")
    assert [e.lookup_key for e in client.v1.entitlements.active_entitlements.list({"customer": cus}).data] == [
        "api_access",
        "dashboard",
        "team_seats",
    ]
    # When the customer is deleted
    assert client.v1.customers.delete(cus).deleted is True
    # Then its subscription is canceled first, entitlements are emptied, then customer.deleted
    types = hooks.snapshot_types()
    tail = types[types.index("customer.subscription.deleted") :]
    assert tail == [
        "customer.subscription.deleted",
        "entitlements.active_entitlement_summary.updated",
        "customer.deleted",
    ]
    summary = hooks.snapshot_events()[-2]
    assert summary.data.object.entitlements.data == []
    assert len(summary.data.previous_attributes.entitlements.data) == 3
    assert client.v1.subscriptions.retrieve(sub_id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve(cus)


def test_checkout_session_expires_via_api_and_after_24h(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    params = {"mode": "subscription", "line_items": [{"price": "price_starter_monthly"}], "success_url": "https://x"}
    by_api = client.v1.checkout.sessions.create(params)
    by_clock = client.v1.checkout.sessions.create(params)
    assert client.v1.checkout.sessions.expire(by_api.id).status == "expired"
    emu.clock.advance(24 * 3600 + 1)
    assert client.v1.checkout.sessions.retrieve(by_clock.id).status == "expired"
    expired = [e.data.object.id for e in hooks.snapshot_events() if e.type == "checkout.session.expired"]
    assert expired == [by_api.id, by_clock.id]
    assert requests.get(by_clock.url, timeout=5).status_code == 410


@pytest.mark.parametrize("succeeds", [True, False], ids=["settles", "fails"])
def test_bank_debit_checkout_completes_unpaid_then_settles_with_the_clock(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks, succeeds: bool
) -> None:
    # Given a hosted Checkout page offering an async bank debit
    cs = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": "price_starter_monthly"}], "success_url": "https://x/ok"}
    )
    assert "by bank debit (settles in a few days)" in requests.get(cs.url, timeout=5).text
    # When the customer pays by bank debit
    card = "bank_debit" if succeeds else "bank_debit_fails"
    assert requests.post(cs.url, data={"card": card}, allow_redirects=False, timeout=10).status_code == 303
    # Then the session is complete but unpaid, the subscription waits (and does not expire after 23 h)
    completed = next(e for e in hooks.snapshot_events() if e.type == "checkout.session.completed")
    assert completed.data.object.payment_status == "unpaid"
    sub_id = completed.data.object.subscription
    emu.clock.advance(DAY + 60)
    assert client.v1.subscriptions.retrieve(sub_id).status == "incomplete"
    # When the debit settles (4 days by default)
    emu.clock.advance(3 * DAY)
    types = hooks.snapshot_types()
    sub = client.v1.subscriptions.retrieve(sub_id)
    if succeeds:
        assert "checkout.session.async_payment_succeeded" in types
        assert sub.status == "active"
        assert client.v1.checkout.sessions.retrieve(cs.id).payment_status == "paid"
    else:
        assert "checkout.session.async_payment_failed" in types
        assert "invoice.payment_failed" in types
        assert sub.status == "incomplete_expired"


def test_trial_without_payment_method_pauses_then_resumes(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    # Given a 7-day trial without a payment method that pauses when it ends
    cus = client.v1.customers.create({"email": "trial@example.com"}).id
    sub_id = subscribe(
        client,
        cus,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )
    assert client.v1.subscriptions.retrieve(sub_id).status == "trialing"
    # When the trial ends
    emu.clock.advance(7 * DAY + 60)
    # Then trial_will_end came 3 days before, the subscription is paused and entitlements are gone
    types = hooks.snapshot_types()
    assert types.index("customer.subscription.trial_will_end") < types.index("customer.subscription.paused")
    assert client.v1.subscriptions.retrieve(sub_id).status == "paused"
    assert client.v1.entitlements.active_entitlements.list({"customer": cus}).data == []
    # When the customer adds a card and the subscription is resumed
    set_card(emu, cus, "pay")
    resumed = client.v1.subscriptions.resume(sub_id)
    # Then it is active again, with customer.subscription.resumed and the entitlement back
    assert resumed.status == "active"
    assert "customer.subscription.resumed" in hooks.snapshot_types()
    ents = client.v1.entitlements.active_entitlements.list({"customer": cus}).data
    assert [e.lookup_key for e in ents] == ["dashboard"]
    summaries = [e for e in hooks.snapshot_events() if e.type == "entitlements.active_entitlement_summary.updated"]
    assert [len(s.data.object.entitlements.data) for s in summaries] == [1, 0, 1]


def test_pause_collection_voids_renewals_until_resumes_at(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    cus = paying_customer(client)
    sub = client.v1.subscriptions.retrieve(subscribe(client, cus))
    end = sub["items"].data[0].current_period_end
    resumes = end + 15 * DAY
    updated = client.v1.subscriptions.update(sub.id, {"pause_collection": {"behavior": "void", "resumes_at": resumes}})
    assert updated.pause_collection.behavior == "void"
    assert updated.status == "active"  # collection is paused, the subscription is not
    emu.clock.advance_to(end + 60)
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert renewal.status == "void"
    assert renewal.amount_paid == 0
    assert "customer.subscription.paused" not in hooks.snapshot_types()  # only for status=paused, like Stripe
    emu.clock.advance_to(resumes + 1)
    assert client.v1.subscriptions.retrieve(sub.id).pause_collection is None


def test_pending_update_is_applied_when_paid_and_expires_otherwise(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    # Given two active starter subscriptions whose customer's card then fails
    cus = paying_customer(client)
    first = client.v1.subscriptions.retrieve(subscribe(client, cus))
    second = client.v1.subscriptions.retrieve(subscribe(client, cus))
    set_card(emu, cus, "decline_on_charge")
    # When both are upgraded with payment_behavior=pending_if_incomplete
    pending = []
    for sub in (first, second):
        upd = client.v1.subscriptions.update(
            sub.id,
            {
                "payment_behavior": "pending_if_incomplete",
                "proration_behavior": "always_invoice",
                "items": [{"id": sub["items"].data[0].id, "price": "price_team_monthly"}],
            },
        )
        pending.append(upd)
    # Then the items are unchanged and the change waits in pending_update
    for upd in pending:
        assert upd["items"].data[0].price.id == "price_starter_monthly"
        assert upd.pending_update.subscription_items[0].price.id == "price_team_monthly"
        assert upd.status == "active"
    # When the first one's invoice is paid with a working card
    set_card(emu, cus, "pay")
    client.v1.invoices.pay(pending[0].latest_invoice)
    # Then its update is applied
    applied = client.v1.subscriptions.retrieve(first.id)
    assert applied.pending_update is None
    assert applied["items"].data[0].price.id == "price_team_monthly"
    # When the second one's pending update passes expires_at
    emu.clock.advance_to(pending[1].pending_update.expires_at + 1)
    expired = client.v1.subscriptions.retrieve(second.id, {"expand": ["latest_invoice"]})
    assert expired.pending_update is None
    assert expired["items"].data[0].price.id == "price_starter_monthly"
    assert expired.latest_invoice.status == "void"
    types = hooks.snapshot_types()
    assert types.count("customer.subscription.pending_update_applied") == 1
    assert types.count("customer.subscription.pending_update_expired") == 1
    assert "invoice.voided" in types
    # And pending_if_incomplete refuses parameters Stripe does not allow with it
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(first.id, {"payment_behavior": "pending_if_incomplete", "metadata": {"a": "b"}})
