"""The hosted pages tell the truth: amounts in the currency's units, the trial and what is due today, a way back to
cancel_url, buttons that say what they do, and a confirmation after every portal action."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator
from devstack.stripe_emulator.pages.money import format_amount, format_recurring


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (900, "usd", "$9.00"),
        (290000, "usd", "$2,900.00"),
        (500, "jpy", "¥500"),
        (1234, "kwd", "1.234 KWD"),
        (5, "chf", "0.05 CHF"),
    ],
)
def test_amounts_are_shown_in_the_currencys_units(amount: int, currency: str, shown: str) -> None:
    assert format_amount(amount, currency) == shown


def test_recurring_and_metered_prices_read_as_a_customer_reads_them() -> None:
    monthly = {"unit_amount": 2900, "currency": "usd", "recurring": {"interval": "month", "interval_count": 1}}
    quarterly = {"unit_amount": 2900, "currency": "usd", "recurring": {"interval": "month", "interval_count": 3}}
    metered = {"unit_amount": 1, "currency": "usd", "recurring": {"interval": "month", "usage_type": "metered"}}
    assert format_recurring(monthly) == "$29.00 per month"
    assert format_recurring(quarterly) == "$29.00 every 3 months"
    assert format_recurring(metered) == "$0.01 per unit, billed monthly by usage"


def session(client: stripe.StripeClient, **extra: object) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": "price_team_monthly", "quantity": 2}],
            "success_url": "https://app.example.com/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example.com/billing/cancel",
            **extra,  # type: ignore[typeddict-item]
        }
    )


def test_checkout_shows_the_amount_due_today_and_a_cancel_link(
    emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    # Given a session for two Team seats without a trial
    cs = session(client)
    # When the customer opens the page
    page = requests.get(cs.url, timeout=5).text
    # Then it shows the items and the total in dollars, a main button naming that amount, and the way back
    assert "Team &times; 2: $29.00 per month" in page
    assert "Due today: <strong>$58.00</strong>" in page
    assert ">Subscribe and pay $58.00</button>" in page
    assert "Try a card that is declined (…0002)" in page
    assert "href='https://app.example.com/billing/cancel'" in page
    assert "trial" not in page.lower()


def test_checkout_with_a_trial_says_nothing_is_charged_today(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    cs = session(client, subscription_data={"trial_period_days": 14})
    page = requests.get(cs.url, timeout=5).text
    assert "14-day free trial: nothing is charged today" in page
    assert "Due today: <strong>$0.00</strong>" in page
    assert ">Start trial</button>" in page


def test_a_declined_card_shows_the_reason_and_the_page_again(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    cs = session(client)
    page = requests.post(cs.url, data={"card": "4000000000000002"}, allow_redirects=False, timeout=10)
    assert "Your card was declined (card_declined). Nothing was charged" in page.text
    assert "id='pay'" in page.text
    assert "href='https://app.example.com/billing/cancel'" in page.text


def test_the_portal_confirms_a_card_update_and_a_cancellation(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Given a paying customer in the portal
    cs = session(client)
    requests.post(cs.url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    customer = client.v1.checkout.sessions.retrieve(cs.id).customer
    portal = client.v1.billing_portal.sessions.create(
        {"customer": str(customer), "return_url": "https://app.example.com/billing"}
    )
    page = requests.get(portal.url, timeout=5).text
    assert "Team: $29.00 per month \N{MULTIPLICATION SIGN} 2" in page
    assert "Return to app.example.com" in page
    # When they update their card, Then the page says which card is now the default
    after = requests.post(portal.url + "/action", data={"action": "update_card", "card": "4242424242424242"}, timeout=5)
    assert "Card ending 4242 is now your default payment method." in after.text
    # When they cancel at period end, Then the page says when it ends, and offers to resume
    sub = client.v1.subscriptions.list({"customer": str(customer)}).data[0]
    after = requests.post(portal.url + "/action", data={"action": "cancel", "subscription": sub.id}, timeout=5)
    assert "Your subscription will end on " in after.text
    assert "Resume subscription" in after.text
    # And the confirmation is shown once
    assert "will end on" not in requests.get(portal.url, timeout=5).text.split("<h2>")[0]
