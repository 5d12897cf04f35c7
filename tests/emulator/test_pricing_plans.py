"""Pricing-plan subscriptions (v2 preview): thin lifecycle events driven by payments, dunning, cancellation."""

from __future__ import annotations

from typing import Any

import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import Hooks

DAY = 86400
PREFIX = "v2.billing.pricing_plan_subscription."


def buy_pricing_plan(client: stripe.StripeClient) -> Any:
    """A pricing-plan Checkout (preview version) paid on the hosted page; returns the session."""
    cs = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "success_url": "https://x/ok",
            "checkout_items": [
                {
                    "type": "pricing_plan_subscription_item",
                    "pricing_plan_subscription_item": {"pricing_plan": "bpp_test_usage_pro"},
                }
            ],
        },
        {"stripe_version": "2025-09-30.preview"},
    )
    requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    return cs


def test_pricing_plan_subscription_collection_and_servicing_transitions(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    # Given a pricing-plan subscription bought through Checkout
    buy_pricing_plan(client)

    def transitions() -> list[str]:
        return [n.type.removeprefix(PREFIX) for n in hooks.thin_notes() if n.type.startswith(PREFIX)]

    assert transitions() == ["servicing_activated", "collection_current"]
    ppsub_id = next(n for n in hooks.thin_notes() if n.type.startswith(PREFIX)).related_object.id
    # And the object is retrievable at GET /v2/billing/pricing_plan_subscriptions/{id} (no SDK service in 16.1.0)
    raw = client.raw_request("get", f"/v2/billing/pricing_plan_subscriptions/{ppsub_id}")
    ppsub = client.deserialize(raw, api_mode="V2")
    assert ppsub.servicing_status == "active"
    assert ppsub.collection_status == "current"
    # When the card starts failing and the monthly renewal comes
    cus = ppsub.customer
    requests.post(emu.url + f"/_emulator/customers/{cus}/card", json={"card": "decline_on_charge"}, timeout=5)
    emu.clock.advance(31 * DAY)
    # Then collection awaits the customer's action
    assert transitions()[-1] == "collection_awaiting_customer_action"
    # When every retry fails (3 x 3 days)
    emu.clock.advance(10 * DAY)
    # Then collection and servicing are paused
    assert transitions()[-2:] == ["collection_paused", "servicing_paused"]
    ppsub = client.deserialize(
        client.raw_request("get", f"/v2/billing/pricing_plan_subscriptions/{ppsub_id}"), api_mode="V2"
    )
    assert (ppsub.servicing_status, ppsub.collection_status) == ("paused", "paused")
    assert ppsub.servicing_status_transitions.paused_at is not None
    # When it is canceled
    requests.post(emu.url + f"/_emulator/pricing_plan_subscriptions/{ppsub_id}/cancel", timeout=5)
    assert transitions()[-1] == "servicing_canceled"
    # And every thin event was signed and names the subscription as its related object
    notes = [n for n in hooks.thin_notes() if n.type.startswith(PREFIX)]
    assert {n.related_object.id for n in notes} == {ppsub_id}
    assert notes[-1].fetch_event().related_object.type == "v2.billing.pricing_plan_subscription"


def test_recovered_payment_brings_collection_back_to_current(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    cs = buy_pricing_plan(client)
    cus = client.v1.checkout.sessions.retrieve(cs.id).customer
    requests.post(emu.url + f"/_emulator/customers/{cus}/card", json={"card": "decline_on_charge"}, timeout=5)
    emu.clock.advance(31 * DAY)
    requests.post(emu.url + f"/_emulator/customers/{cus}/card", json={"card": "pay"}, timeout=5)
    emu.clock.advance(3 * DAY + 60)
    types = [n.type.removeprefix(PREFIX) for n in hooks.thin_notes() if n.type.startswith(PREFIX)]
    assert types[-2:] == ["collection_awaiting_customer_action", "collection_current"]
