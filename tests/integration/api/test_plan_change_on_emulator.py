"""Preview then change, through the portal handler and the emulator's proration engine: the amount shown is the
amount charged, and a token works once, for its own user only."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.api.conftest import Stack
from tollgate.adapters.dynamodb import subscription_repository as repository_module
from tollgate.domain.subscriptions import SubscriptionState


class ProjectionFromStripe:
    """Stands in for the webhook-fed projection: the current subscription state, read from the emulator."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def current_for_customer(self, customer_id: str) -> SubscriptionState | None:
        subs = [s for s in self.stack.emulator.store.all("subscription") if s["customer"] == customer_id]
        if not subs:
            return None
        sub = subs[-1]
        item = sub["items"]["data"][0]
        return SubscriptionState(
            subscription_id=sub["id"],
            customer_id=customer_id,
            status=sub["status"],
            price_id=item["price"]["id"],
            quantity=item["quantity"],
            current_period_start=item["current_period_start"],
            current_period_end=item["current_period_end"],
        )

    def for_customer(self, customer_id: str) -> list[SubscriptionState]:
        state = self.current_for_customer(customer_id)
        return [state] if state else []


@pytest.fixture
def subscribed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(repository_module, "DynamoSubscriptionRepository", lambda *a, **k: ProjectionFromStripe(stack))
    # Given Alice subscribed to Starter through our checkout and paid on the hosted page
    created = stack.checkout("POST", "/checkout/sessions", body={"plan": "starter"}, claims={"sub": "alice"})
    url = json.loads(created["body"])["url"]
    requests.post(url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=10)
    return {"sub": "alice"}


def test_the_amount_previewed_is_the_amount_charged(stack: Stack, subscribed: dict[str, Any]) -> None:
    # When Alice previews 3 Team seats
    preview = stack.portal(
        "POST", "/billing/subscription/preview", body={"plan": "team", "quantity": 3}, claims=subscribed
    )
    assert preview["statusCode"] == 200, preview["body"]
    shown = json.loads(preview["body"])
    assert shown["amount_due_now"] > 0
    # And confirms it
    changed = stack.portal("POST", "/billing/subscription/change", body={"token": shown["token"]}, claims=subscribed)
    assert changed["statusCode"] == 200, changed["body"]
    # Then Stripe charged exactly the amount shown, for the new plan and quantity
    [update] = [
        r for r in stack.emulator.request_log if r["method"] == "POST" and r["path"].startswith("/v1/subscriptions/")
    ]
    assert update["params"]["proration_date"] == str(shown["proration_date"])
    invoices = [i for i in stack.emulator.store.all("invoice") if i.get("billing_reason") == "subscription_update"]
    assert [i["amount_paid"] for i in invoices] == [shown["amount_due_now"]]
    sub = stack.emulator.store.all("subscription")[-1]
    assert (sub["items"]["data"][0]["price"]["id"], sub["items"]["data"][0]["quantity"]) == ("price_team_monthly", 3)


def test_a_token_is_refused_twice_for_another_user_and_when_tampered(stack: Stack, subscribed: dict[str, Any]) -> None:
    preview = stack.portal(
        "POST", "/billing/subscription/preview", body={"plan": "team", "quantity": 2}, claims=subscribed
    )
    token = json.loads(preview["body"])["token"]
    # Another signed-in user presenting Alice's token
    assert (
        stack.portal("POST", "/billing/subscription/change", body={"token": token}, claims={"sub": "mallory"})[
            "statusCode"
        ]
        == 403
    )
    # A tampered token
    forged = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    assert (
        stack.portal("POST", "/billing/subscription/change", body={"token": forged}, claims=subscribed)["statusCode"]
        == 403
    )
    # The real one, twice
    first = stack.portal("POST", "/billing/subscription/change", body={"token": token}, claims=subscribed)
    second = stack.portal("POST", "/billing/subscription/change", body={"token": token}, claims=subscribed)
    assert (first["statusCode"], second["statusCode"]) == (200, 409)
    updates = [
        r for r in stack.emulator.request_log if r["method"] == "POST" and r["path"].startswith("/v1/subscriptions/")
    ]
    assert len(updates) == 1


def test_logs_carry_no_secrets_tokens_or_emails(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(repository_module, "DynamoSubscriptionRepository", lambda *a, **k: ProjectionFromStripe(stack))
    # INFO as in Lambda (botocore's own DEBUG logging prints raw Secrets Manager responses: never enable it there)
    caplog.set_level("INFO")
    claims = {"sub": "user-logs", "email": "private.person@example.test", "email_verified": True}
    # Given a full journey: checkout, payment, preview, change, a replayed token and a Stripe fault
    created = stack.checkout("POST", "/checkout/sessions", body={"plan": "starter"}, claims=claims)
    requests.post(
        json.loads(created["body"])["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=10
    )
    preview = stack.portal("POST", "/billing/subscription/preview", body={"plan": "team", "quantity": 2}, claims=claims)
    token = json.loads(preview["body"])["token"]
    stack.portal("POST", "/billing/subscription/change", body={"token": token}, claims=claims)
    stack.portal("POST", "/billing/subscription/change", body={"token": token}, claims=claims)
    stack.emulator.faults.add("/v1/billing_portal/sessions", method="POST", status=400)
    assert stack.portal("POST", "/portal/sessions", claims=claims)["statusCode"] == 502
    # Then nothing logged contains the API key, the token, the email or a session URL
    # (moto's request interceptor logs the test's own browser-side requests; those are not the product's logs)
    ours = [r for r in caplog.records if not r.name.startswith(("moto", "responses"))]
    logged = "\n".join(str(r.__dict__) for r in ours)
    assert len(ours) > 5  # the journey did log
    for secret in (stack.api_key, token, token.split(".")[1], "private.person", "/c/pay/"):
        assert secret not in logged
