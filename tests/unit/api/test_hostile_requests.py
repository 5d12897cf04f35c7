"""Mass assignment and BOLA: whatever a caller sends, only allowlisted prices, bounded quantities, the caller's own
customer and configured URLs reach Stripe, and nothing answers 5xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api_world import Invoke
from tests.unit.api.fakes import CANCEL_URL, RETURN_URL, SUCCESS_URL, World, resolved_catalog

CATALOG = resolved_catalog()
USERS = ["user-a", "user-b", "user-new-1", "user-new-2"]
HOSTILE_FIELDS = [
    "customer",
    "price",
    "success_url",
    "cancel_url",
    "return_url",
    "trial_period_days",
    "metadata",
    "mode",
    "client_reference_id",
    "discounts",
    "line_items",
    "subscription_data",
    "user_id",
    "configuration",
]
ALLOWED_CHECKOUT_PARAMS = {
    "mode",
    "customer",
    "client_reference_id",
    "success_url",
    "cancel_url",
    "metadata",
    "subscription_data",
    "line_items",
    "checkout_items",
    "allow_promotion_codes",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=4,
)
plans = (
    st.sampled_from(["starter", "team", "usage-pro", "enterprise", "", "STARTER", "price_team_yearly"]) | json_values
)
quantities = st.sampled_from([0, -1, 1, 2, 3, 50, 51, 10**9, "1", 1.5, True, None]) | st.integers()
bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "plan": plans,
            "quantity": quantities,
            **{name: json_values | st.just("cus_victim") for name in HOSTILE_FIELDS},
        },
    ),
    json_values,
)


def check_checkout_call(call: dict[str, Any], user_id: str, customer_id: str | None) -> list[str]:
    """Every way a Stripe checkout call could betray the caller or the catalog; empty means safe."""
    p = call["params"]
    problems = []
    if set(p) - ALLOWED_CHECKOUT_PARAMS:
        problems.append(f"unexpected params {set(p) - ALLOWED_CHECKOUT_PARAMS}")
    if p.get("customer") != customer_id or customer_id is None:
        problems.append("foreign customer")
    if p.get("client_reference_id") != user_id:
        problems.append("client_reference_id")
    if p.get("success_url") != SUCCESS_URL or p.get("cancel_url") != CANCEL_URL:
        problems.append("urls")
    plan = CATALOG.get(str(p.get("metadata", {}).get("plan")))
    if plan is None:
        problems.append("plan not in catalog")
        return problems
    if p.get("metadata") != {"app_user_id": user_id, "plan": plan.key}:
        problems.append("metadata")
    if plan.price_id:
        [item] = p.get("line_items", [{}])
        if item.get("price") != plan.price_id or not plan.min_quantity <= item.get("quantity", 0) <= plan.max_quantity:
            problems.append("price or quantity")
    trial = p.get("subscription_data", {}).get("trial_period_days", 0)
    if trial != plan.trial_days:
        problems.append("trial")
    return problems


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    user=st.sampled_from(USERS),
    idem=st.none() | st.sampled_from(["k1", "x" * 200, "../../", "customer:user-b"]),
)
def test_hostile_checkout_bodies_never_reach_stripe_unsafely(
    checkout_api: Invoke, world: World, body: Any, user: str, idem: str | None
) -> None:
    world.directory.user_to_customer.setdefault("user-a", "cus_a")
    world.directory.user_to_customer.setdefault("user-b", "cus_b")
    before = len(world.sessions.checkout_calls)
    headers = {"Idempotency-Key": idem} if idem is not None else {}
    response = checkout_api("POST", "/checkout/sessions", body=json.dumps(body), claims={"sub": user}, headers=headers)
    # Then never a 5xx, and a session only for a valid request
    assert response["statusCode"] in (200, 400, 422), response["body"]
    new_calls = world.sessions.checkout_calls[before:]
    if response["statusCode"] != 200:
        assert new_calls == []
        return
    assert set(json.loads(response["body"])) == {"id", "url"}
    [call] = new_calls
    assert check_checkout_call(call, user, world.directory.customer_for_user(user)) == []


def test_control_the_property_catches_a_mass_assignment_implementation() -> None:
    # Control: a naive builder that merges the body into the Stripe params is flagged by the same checker
    body = {"plan": "starter", "quantity": 1, "customer": "cus_victim", "trial_period_days": 365}
    naive_params = {
        "mode": "subscription",
        "customer": "cus_a",
        "client_reference_id": "user-a",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "metadata": {"app_user_id": "user-a", "plan": "starter"},
        "subscription_data": {"trial_period_days": 14},
        "line_items": [{"price": "price_starter_monthly", "quantity": 1}],
    }
    naive_params.update(body)
    assert check_checkout_call({"params": naive_params}, "user-a", "cus_a") != []


ATTACKS: list[dict[str, Any]] = [
    {"body": {"plan": "starter", "customer": "cus_b"}},
    {"body": {"plan": "starter", "user_id": "user-b"}},
    {"body": {"plan": "starter", "client_reference_id": "user-b"}},
    {"body": {"plan": "starter"}, "headers": {"X-User-Id": "user-b", "X-Customer-Id": "cus_b"}},
    {"body": {"plan": "starter"}, "query": {"customer": "cus_b", "user": "user-b"}},
    {"body": {"plan": "starter"}, "headers": {"Idempotency-Key": "b-owned-key"}},
    {"body": {"flow": "payment_method_update", "customer": "cus_b"}, "portal": True},
    {"body": {"return_url": "https://evil.example", "customer": "cus_b"}, "portal": True},
    {"body": {}, "portal": True, "query": {"customer": "cus_b"}, "headers": {"X-Customer-Id": "cus_b"}},
    {"body": {"flow": "subscription_cancel"}, "portal": True, "headers": {"X-User-Id": "user-b"}},
]


def run_bola(checkout_api: Invoke, portal_api: Invoke, world: World, attempts: int) -> tuple[int, int]:
    """User A tries to get sessions for user B's customer; returns (sessions created, foreign sessions)."""
    world.directory.user_to_customer.update({"user-a": "cus_a", "user-b": "cus_b"})
    for i in range(attempts):
        attack = ATTACKS[i % len(ATTACKS)]
        api = portal_api if attack.get("portal") else checkout_api
        path = "/portal/sessions" if attack.get("portal") else "/checkout/sessions"
        response = api(
            "POST",
            path,
            body=attack["body"],
            claims={"sub": "user-a"},
            headers=attack.get("headers"),
            query=attack.get("query"),
        )
        assert response["statusCode"] < 500
    calls = world.sessions.checkout_calls + world.sessions.portal_calls
    foreign = [c for c in calls if c["params"]["customer"] != "cus_a"]
    return len(calls), len(foreign)


def test_a_thousand_attempts_on_another_users_customer_yield_no_foreign_session(
    checkout_api: Invoke, portal_api: Invoke, world: World
) -> None:
    created, foreign = run_bola(checkout_api, portal_api, world, 1000)
    assert foreign == 0
    assert created > 0  # A's own, legitimate-looking attempts still work: the harness is live


def test_control_bola_harness_detects_a_body_trusting_service(
    checkout_api: Invoke, portal_api: Invoke, world: World
) -> None:
    # Control: a portal that trusts a "customer" header (a common peer shortcut) is caught by the same harness
    original = world.sessions.create_portal_session

    def trusting(params: dict[str, Any], key: str) -> str:
        return original({**params, "customer": "cus_b"}, key)

    world.sessions.create_portal_session = trusting  # type: ignore[method-assign]
    _, foreign = run_bola(checkout_api, portal_api, world, len(ATTACKS))
    assert foreign > 0


def test_portal_sessions_use_only_configured_urls_and_the_callers_customer(portal_api: Invoke, world: World) -> None:
    world.directory.link("user-a", "cus_a")
    response = portal_api("POST", "/portal/sessions", claims={"sub": "user-a"})
    assert response["statusCode"] == 200
    assert set(json.loads(response["body"])) == {"url"}
    [call] = world.sessions.portal_calls
    assert call["params"] == {"customer": "cus_a", "return_url": RETURN_URL, "configuration": "bpc_test_config"}
