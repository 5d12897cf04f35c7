"""Object shapes compared with Stripe's published fixtures (skipped when the fixture file is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "stripe" / "fixtures3.json"


@pytest.fixture(scope="module")
def fixtures() -> dict:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe fixtures not available at {FIXTURES} (fresh clone): shape comparison skipped")
    return json.loads(FIXTURES.read_text())["resources"]


def test_generation_specific_fields_live_where_stripe_puts_them(
    fixtures: dict, emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    cs = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": "price_team_monthly"}], "success_url": "https://x"}
    )
    requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    sub = client.v1.subscriptions.retrieve(client.v1.checkout.sessions.retrieve(cs.id).subscription).to_dict()
    inv = client.v1.invoices.retrieve(sub["latest_invoice"]).to_dict()
    # current_period_* on items, not on the subscription, as in the fixture
    assert "current_period_end" in fixtures["subscription_item"]
    assert "current_period_end" in sub["items"]["data"][0]
    assert "current_period_end" not in sub
    assert "current_period_end" not in fixtures["subscription"]
    # invoice -> subscription through parent.subscription_details
    assert "subscription" in fixtures["invoice"]["parent"]["subscription_details"]
    assert inv["parent"]["subscription_details"]["subscription"] == sub["id"]
    for kind, obj in (
        ("subscription", sub),
        ("invoice", inv),
        ("checkout.session", client.v1.checkout.sessions.retrieve(cs.id).to_dict()),
        ("customer", client.v1.customers.retrieve(sub["customer"]).to_dict()),
        ("price", client.v1.prices.retrieve("price_team_monthly").to_dict()),
        ("product", client.v1.products.retrieve("prod_team").to_dict()),
        ("billing.meter", client.v1.billing.meters.retrieve("mtr_api_tokens").to_dict()),
    ):
        core = {"id", "object", "created", "livemode", "metadata", "status", "customer", "currency"}
        expected = core & set(fixtures[kind])
        assert expected <= set(obj), (kind, expected - set(obj))
        assert obj["object"] == fixtures[kind]["object"]
