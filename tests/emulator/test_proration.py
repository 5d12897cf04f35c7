"""Proration: preview amount == amount charged on the update with the same proration_date."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator


def active_subscription(client: stripe.StripeClient, price: str = "price_starter_monthly", qty: int = 1) -> str:
    cs = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": price, "quantity": qty}], "success_url": "https://x/ok"}
    )
    requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    return client.v1.checkout.sessions.retrieve(cs.id).subscription


def test_preview_equals_charged_amount(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Given an active Starter subscription, 10 days into its period
    sub_id = active_subscription(client)
    emu.clock.advance(10 * 86400)
    sub = client.v1.subscriptions.retrieve(sub_id)
    item = sub["items"].data[0]
    proration_date = emu.clock.now_int()
    change = {"items": [{"id": item.id, "price": "price_team_monthly", "quantity": 3}]}
    # When previewing the upgrade with a proration date
    preview = client.v1.invoices.create_preview(
        {
            "subscription": sub_id,
            "subscription_details": {
                **change,
                "proration_date": proration_date,
                "proration_behavior": "always_invoice",
            },
        }
    )
    start, end = item.current_period_start, item.current_period_end
    frac = (end - proration_date) / (end - start)
    expected = round(2900 * 3 * frac) - round(900 * 1 * frac)
    assert preview.amount_due == expected
    assert all(line.parent.subscription_item_details.proration for line in preview.lines.data)
    # And then updating with the same proration date and always_invoice
    emu.clock.advance(120)  # time passes between preview and confirmation
    updated = client.v1.subscriptions.update(
        sub_id, {**change, "proration_date": proration_date, "proration_behavior": "always_invoice"}
    )
    # Then the invoice charged equals the preview exactly
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert invoice.amount_paid == preview.amount_due
    assert invoice.billing_reason == "subscription_update"
    assert invoice.parent.subscription_details.subscription == sub_id
    assert updated["items"].data[0].price.id == "price_team_monthly"
    assert updated["items"].data[0].quantity == 3


def test_default_preview_includes_next_period(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    sub_id = active_subscription(client)
    sub = client.v1.subscriptions.retrieve(sub_id)
    item = sub["items"].data[0]
    pdate = item.current_period_start + 86400 * 5
    emu.clock.advance(86400 * 5)
    preview = client.v1.invoices.create_preview(
        {
            "subscription": sub_id,
            "subscription_details": {
                "items": [{"id": item.id, "price": "price_team_monthly"}],
                "proration_date": pdate,
            },
        }
    )
    proration = sum(li.amount for li in preview.lines.data if li.parent.subscription_item_details.proration)
    assert preview.amount_due == proration + 2900


def test_proration_date_outside_period_is_rejected(client: stripe.StripeClient) -> None:
    sub_id = active_subscription(client)
    item = client.v1.subscriptions.retrieve(sub_id)["items"].data[0]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.create_preview(
            {
                "subscription": sub_id,
                "subscription_details": {
                    "items": [{"id": item.id, "price": "price_team_monthly"}],
                    "proration_date": item.current_period_end + 10,
                },
            }
        )
    assert err.value.param == "proration_date"
