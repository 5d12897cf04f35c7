"""`python -m tollgate.commands.reconcile` wired through the composition root: a subscription paid in Stripe whose
webhook never arrived is projected into the table, and the user's status says so."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.api.conftest import Stack
from tollgate.commands import reconcile


def test_the_command_projects_a_subscription_whose_webhook_never_arrived(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a user who paid on Stripe's Checkout page, and no webhook was ever delivered
    created = stack.checkout("POST", "/checkout/sessions", body={"plan": "starter"}, claims={"sub": "user-sync"})
    assert created["statusCode"] == 200, created["body"]
    paid = requests.post(
        json.loads(created["body"])["url"], data={"card": "4242424242424242"}, allow_redirects=False, timeout=10
    )
    assert paid.status_code in (302, 303)
    status = stack.container.billing_status
    assert status.for_user("user-sync")["status"] == "none"
    customer = stack.container.customer_directory.customer_for_user("user-sync")
    # When ops reconcile that customer
    assert reconcile.main(["--customer", customer]) == 0
    # Then the command reports one subscription changed, and the user's status shows access
    report: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report == {"subscriptions": 1, "state_changes": 1, "skipped_without_customer": 0}
    view = status.for_user("user-sync")
    assert view["status"] in ("trialing", "active")
    assert view["access"]["allowed"] is True


def test_the_command_needs_a_target() -> None:
    with pytest.raises(SystemExit) as exited:
        reconcile.main([])
    assert exited.value.code == 2
