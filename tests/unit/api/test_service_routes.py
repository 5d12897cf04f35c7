"""The IAM service routes through the real portal handler, with fakes behind the ports: the app's backends get the
same decision the signed-in user gets, for every row of the access table; only an IAM-authorized request of the
API's own account reaches a service; customer details and erasure change Stripe exactly as decided."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.api_world import Invoke
from tests.support.events import FakeLambdaContext, http_api_event
from tests.unit.api.fakes import World, subscription
from tollgate import bootstrap
from tollgate.domain.access import DAY, AccessPolicy
from tollgate.domain.customer_accounts import CustomerDetails
from tollgate.services.billing_status import BillingStatusService
from tollgate.services.customer_accounts import CustomerAccountService

NOW = 1_790_100_000
PERIOD_START = NOW - 10 * DAY
SERVICE_CALLER = {"accountId": "123456789012"}

# Every row of the access table (tests/unit/webhooks/test_access.py has the rules): the projected subscription.
ACCESS_TABLE: dict[str, dict[str, Any] | None] = {
    "no_subscription": None,
    "active": {"status": "active"},
    "trialing": {"status": "trialing", "trial_end": NOW + 5 * DAY},
    "cancel_at_period_end": {"status": "active", "cancel_at_period_end": True, "cancel_at": NOW + 20 * DAY},
    "canceled_period_ended": {"status": "active", "cancel_at_period_end": True, "cancel_at": NOW - 1},
    "past_due_in_grace": {"status": "past_due", "current_period_start": NOW - 2 * DAY},
    "past_due_after_grace": {"status": "past_due", "current_period_start": NOW - 9 * DAY},
    "incomplete": {"status": "incomplete"},
    "incomplete_expired": {"status": "incomplete_expired"},
    "unpaid": {"status": "unpaid"},
    "paused": {"status": "paused"},
    "canceled": {"status": "canceled"},
    "deleted": {"status": "active", "gone": True},
    "pricing_plan_servicing": {
        "status": "active",
        "kind": "pricing_plan_subscription",
        "pricing_plan_servicing": "active",
        "pricing_plan_collection": "current",
    },
}


@dataclass
class FakeCustomerAccounts:
    """Stripe's side: customers' details, updates and deletions (with their idempotency keys)."""

    details_by_customer: dict[str, CustomerDetails] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)

    def details(self, customer_id: str) -> CustomerDetails | None:
        return self.details_by_customer.get(customer_id)

    def update_details(self, customer_id: str, changes: dict[str, str], idempotency_key: str) -> None:
        self.updates.append({"customer": customer_id, "changes": changes, "key": idempotency_key})
        current = self.details_by_customer[customer_id]
        self.details_by_customer[customer_id] = CustomerDetails(
            email=changes.get("email", current.email), name=changes.get("name", current.name)
        )

    def delete(self, customer_id: str, idempotency_key: str) -> None:
        self.deletions.append({"customer": customer_id, "key": idempotency_key})
        self.details_by_customer.pop(customer_id, None)


@pytest.fixture
def accounts(world: World, monkeypatch: pytest.MonkeyPatch) -> FakeCustomerAccounts:
    fake = FakeCustomerAccounts()
    policy = AccessPolicy(past_due_grace_seconds=7 * DAY)
    monkeypatch.setattr(
        bootstrap.Container,
        "billing_status",
        property(lambda c: BillingStatusService(world.subscriptions, world.directory, policy, clock=lambda: NOW)),
    )
    monkeypatch.setattr(
        bootstrap.Container,
        "customer_accounts",
        property(lambda c: CustomerAccountService(world.directory, world.subscriptions, fake, clock=lambda: NOW)),
    )
    return fake


def given_user(world: World, user: str, projected: dict[str, Any] | None) -> str:
    customer = "cus_" + user.removeprefix("user-")
    world.directory.link(user, customer, subscribed=projected is not None)
    if projected is not None:
        values = {"current_period_start": PERIOD_START, "current_period_end": NOW + 20 * DAY, **projected}
        world.subscriptions.states[customer] = subscription(customer, **values)
    return customer


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def service_get(portal_api: Invoke, path: str, user: str, **extra: Any) -> dict[str, Any]:
    params = {"user_id": user, **extra.pop("path_parameters", {})}
    return portal_api("GET", path, iam=SERVICE_CALLER, path_parameters=params, **extra)


@pytest.mark.parametrize("row", list(ACCESS_TABLE))
def test_a_service_caller_gets_the_same_decision_as_the_signed_in_user(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts, row: str
) -> None:
    # Given a user whose projected subscription is one row of the access table
    user = "user-" + row.replace("_", "-")
    given_user(world, user, ACCESS_TABLE[row])
    # When the user asks with their JWT and a backend asks over the IAM service route
    mine = portal_api("GET", "/billing/subscription", claims={"sub": user})
    theirs = service_get(portal_api, f"/service/users/{user}/billing", user)
    # Then both get 200 and the same body: status, access (allowed, reason, until) and features
    assert mine["statusCode"] == theirs["statusCode"] == 200
    assert body_of(theirs) == body_of(mine)


def test_the_access_table_covers_both_decisions() -> None:
    # A guard on the table above: it holds rows that allow and rows that deny (else the test above proves less).
    allowed = {"active", "trialing", "cancel_at_period_end", "past_due_in_grace", "pricing_plan_servicing"}
    assert allowed < set(ACCESS_TABLE)
    assert len(set(ACCESS_TABLE) - allowed) >= 8


@pytest.mark.parametrize(
    ("projected", "features", "feature", "enabled"),
    [
        ({"status": "active"}, ("reports", "api"), "reports", True),
        ({"status": "active"}, ("api",), "reports", False),  # not entitled
        ({"status": "unpaid"}, ("reports",), "reports", False),  # entitled, but access is denied
        (None, (), "reports", False),
    ],
)
def test_a_feature_check_is_on_only_with_access_and_the_entitlement(
    portal_api: Invoke,
    world: World,
    accounts: FakeCustomerAccounts,
    projected: dict[str, Any] | None,
    features: tuple[str, ...],
    feature: str,
    enabled: bool,
) -> None:
    given_user(world, "user-f", {**projected, "features": features} if projected else None)
    response = service_get(
        portal_api, f"/service/users/user-f/features/{feature}", "user-f", path_parameters={"feature": feature}
    )
    assert response["statusCode"] == 200
    assert body_of(response)["enabled"] is enabled
    assert body_of(response)["feature"] == feature


@pytest.mark.parametrize(
    ("authorizer", "status"),
    [
        ({"jwt": {"claims": {"sub": "user-a"}, "scopes": ["billing"]}}, 401),  # a user's JWT is not a service
        (None, 401),  # no authorizer context: a direct invoke, or a route deployed without AWS_IAM
        ({"iam": {**SERVICE_CALLER, "accountId": "999999999999"}}, 403),  # another account's principal
    ],
    ids=["user-jwt", "no-authorizer", "foreign-account"],
)
def test_only_an_iam_caller_of_this_account_reaches_a_service_route(
    world: World, accounts: FakeCustomerAccounts, authorizer: dict[str, Any] | None, status: int
) -> None:
    from functions.portal import app as portal_app

    # Given a paying user, and a request about them whose authorizer context is not this account's IAM
    given_user(world, "user-a", {"status": "active"})
    event = http_api_event(
        "GET", "/service/users/user-a/billing", iam=SERVICE_CALLER, path_parameters={"user_id": "user-a"}
    )
    if authorizer is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"] = authorizer
    # When it reaches the handler
    response = portal_app.handler(event, FakeLambdaContext())
    # Then it is refused with the one error shape, and says nothing about the user
    assert response["statusCode"] == status
    assert set(body_of(response)) == {"error"}
    assert "active" not in response["body"]


@pytest.mark.parametrize("user_id", ["", "x" * 129, "user\x00null", "line\nbreak"])
def test_an_invalid_user_id_is_a_400(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts, user_id: str
) -> None:
    response = service_get(portal_api, "/service/users/x/billing", user_id)
    assert response["statusCode"] == 400
    assert body_of(response) == {"error": {"status": 400, "reason": "invalid user id"}}


def test_customer_details_send_only_what_differs_and_a_retry_sends_nothing(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts
) -> None:
    # Given a customer Stripe knows as old@example.com, named Ada
    customer = given_user(world, "user-d", {"status": "active"})
    accounts.details_by_customer[customer] = CustomerDetails("old@example.com", "Ada")

    def put(details: dict[str, Any]) -> dict[str, Any]:
        return portal_api(
            "PUT",
            "/service/users/user-d/customer",
            iam=SERVICE_CALLER,
            path_parameters={"user_id": "user-d"},
            body=details,
        )

    # When the backend sets a new email (same name), then retries the same request
    first = put({"email": "new@example.com", "name": "Ada"})
    retry = put({"email": "new@example.com", "name": "Ada"})
    # Then Stripe got one update with the email only; the retry sent nothing
    assert first["statusCode"] == retry["statusCode"] == 200
    assert body_of(first) == {"user_id": "user-d", "updated": ["email"]}
    assert body_of(retry) == {"user_id": "user-d", "updated": []}
    assert [u["changes"] for u in accounts.updates] == [{"email": "new@example.com"}]
    # And changing it back later is a new change under a new key (a replayed key would leave Stripe unchanged)
    put({"email": "old@example.com"})
    assert [u["changes"] for u in accounts.updates] == [{"email": "new@example.com"}, {"email": "old@example.com"}]
    assert len({u["key"] for u in accounts.updates}) == 2


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "not-an-email"}, {"name": ""}, {"email": "a@b.co", "phone": "1"}, {"name": 5}],
    ids=["empty", "bad-email", "empty-name", "unknown-field", "wrong-type"],
)
def test_invalid_customer_details_are_refused_before_stripe(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts, body: dict[str, Any]
) -> None:
    customer = given_user(world, "user-d", {"status": "active"})
    accounts.details_by_customer[customer] = CustomerDetails("old@example.com", "Ada")
    response = portal_api(
        "PUT", "/service/users/user-d/customer", iam=SERVICE_CALLER, path_parameters={"user_id": "user-d"}, body=body
    )
    assert response["statusCode"] in (400, 422)
    assert set(body_of(response)) == {"error"}
    assert accounts.updates == []


def test_details_for_a_user_without_a_customer_are_a_404(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts
) -> None:
    response = portal_api(
        "PUT",
        "/service/users/user-nobody/customer",
        iam=SERVICE_CALLER,
        path_parameters={"user_id": "user-nobody"},
        body={"email": "a@example.com"},
    )
    assert response["statusCode"] == 404
    assert accounts.updates == []


@pytest.mark.parametrize("status", ["active", "trialing", "past_due", "unpaid", "paused", "incomplete"])
def test_erasure_is_refused_while_stripe_may_still_collect(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts, status: str
) -> None:
    # Given a user with a subscription Stripe may still collect on
    customer = given_user(world, "user-e", {"status": status})
    accounts.details_by_customer[customer] = CustomerDetails("e@example.com", "Eve")
    # When the backend asks to erase them
    response = portal_api("DELETE", "/service/users/user-e", iam=SERVICE_CALLER, path_parameters={"user_id": "user-e"})
    # Then 409, and nothing was deleted anywhere
    assert response["statusCode"] == 409
    assert accounts.deletions == []
    assert world.directory.customer_for_user("user-e") == customer


def test_erasure_deletes_the_stripe_customer_and_forgets_the_user_and_a_retry_is_safe(
    portal_api: Invoke, world: World, accounts: FakeCustomerAccounts
) -> None:
    # Given a user whose subscription has ended
    customer = given_user(world, "user-e", {"status": "canceled"})
    accounts.details_by_customer[customer] = CustomerDetails("e@example.com", "Eve")

    def erase() -> dict[str, Any]:
        return portal_api("DELETE", "/service/users/user-e", iam=SERVICE_CALLER, path_parameters={"user_id": "user-e"})

    # When the backend erases them, then retries
    first = erase()
    retry = erase()
    # Then the Stripe customer was deleted once, the user is forgotten, and the retry is a 200 that deletes nothing
    assert first["statusCode"] == retry["statusCode"] == 200
    assert body_of(first) == {"user_id": "user-e", "erased": True, "stripe_customer_deleted": True}
    assert body_of(retry) == {"user_id": "user-e", "erased": True, "stripe_customer_deleted": False}
    assert [d["customer"] for d in accounts.deletions] == [customer]
    assert "user-e" in world.directory.erased
    assert world.directory.customer_for_user("user-e") is None
