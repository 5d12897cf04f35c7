"""Plan change preview and apply: signed, short-lived, single-use tokens bound to one stored change."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from tests.unit.api.fakes import AdmitAll, InMemoryDirectory, resolved_catalog, subscription
from tollgate import errors
from tollgate.adapters.dynamodb.pending_changes import DynamoPendingChangeStore
from tollgate.domain.access import AccessPolicy
from tollgate.domain.plan_changes import ProrationPreview, SubscriptionView, TokenSigner
from tollgate.http.models import PreviewRequest
from tollgate.services.plan_changes import PlanChangeService

PERIOD_START = 1_790_000_000
PERIOD_END = PERIOD_START + 30 * 86400


class FakeSubscriptions:
    def __init__(self) -> None:
        self.states: dict[str, Any] = {}

    def for_customer(self, customer_id: str) -> list[Any]:
        return [self.states[customer_id]] if customer_id in self.states else []

    def current_for_customer(self, customer_id: str) -> Any:
        return self.states.get(customer_id)


class FakePlanChangeGateway:
    """Stripe's live subscriptions, with a proration that depends on every input (so a mismatch shows)."""

    def __init__(self) -> None:
        self.live: dict[str, SubscriptionView] = {}
        self.previews: list[dict[str, Any]] = []
        self.applied: list[dict[str, Any]] = []
        self.fail_apply: Exception | None = None
        self.lose_response = False
        self.charged: list[int] = []

    def subscription(self, subscription_id: str) -> SubscriptionView:
        return self.live[subscription_id]

    def preview(self, params: dict[str, Any]) -> ProrationPreview:
        self.previews.append(params)
        amount = self.charge_from_live(params["subscription"], params["subscription_details"])
        return ProrationPreview(amount_due=amount, currency="usd")

    def apply(self, subscription_id: str, params: dict[str, Any], idempotency_key: str) -> None:
        if self.fail_apply is not None:
            raise self.fail_apply
        self.applied.append({"id": subscription_id, "params": params, "key": idempotency_key})
        self.charged.append(self.charge_from_live(subscription_id, params))
        item = params["items"][0]
        self.live[subscription_id] = replace(
            self.live[subscription_id], price_id=item["price"], quantity=item["quantity"]
        )
        if self.lose_response:
            raise errors.UpstreamUnavailable()  # Stripe applied it; the answer never arrived

    def charge_from_live(self, subscription_id: str, params: dict[str, Any]) -> int:
        """What Stripe charges: the new items' remaining-period cost minus the credit for what the item holds."""
        live = self.live[subscription_id]
        held = {"items": [{"price": live.price_id, "quantity": live.quantity}], "proration_date": 0}
        credit = self.proration({**held, "proration_date": params["proration_date"]})
        return self.proration(params) - credit

    @staticmethod
    def proration(details: dict[str, Any]) -> int:
        item = details["items"][0]
        unit = {"price_starter_monthly": 900, "price_team_monthly": 2900}[item["price"]]
        return round(unit * item["quantity"] * (PERIOD_END - details["proration_date"]) / (PERIOD_END - PERIOD_START))


class Harness:
    def __init__(self, store: Any) -> None:
        self.now = float(PERIOD_START + 10 * 86400)
        self.directory = InMemoryDirectory()
        self.subscriptions = FakeSubscriptions()
        self.gateway = FakePlanChangeGateway()
        self.store = store
        self.signer = TokenSigner(b"k" * 32)
        counter = iter(range(10_000))
        self.service = PlanChangeService(
            catalog=resolved_catalog,
            directory=self.directory,
            subscriptions=self.subscriptions,
            access_policy=AccessPolicy(),
            rate_limiter=AdmitAll(),
            gateway=self.gateway,
            store=store,
            signer=self.signer,
            clock=lambda: self.now,
            new_token_id=lambda: f"tok{next(counter)}",
        )

    def give_subscription(self, user_id: str) -> None:
        customer_id = f"cus_{user_id}"
        self.directory.link(user_id, customer_id)
        state = subscription(customer_id, "active")
        self.subscriptions.states[customer_id] = state
        self.gateway.live[state.subscription_id] = SubscriptionView(
            id=state.subscription_id,
            customer_id=customer_id,
            status="active",
            item_id=f"si_{user_id}",
            price_id="price_starter_monthly",
            quantity=1,
            current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
        )


@pytest.fixture
def h(billing_table: str) -> Harness:
    harness = Harness(DynamoPendingChangeStore(boto3.client("dynamodb"), billing_table))
    harness.give_subscription("alice")
    harness.give_subscription("bob")
    return harness


def test_the_change_applies_exactly_what_was_previewed(h: Harness) -> None:
    # Given Alice previews an upgrade to 3 Team seats
    preview = h.service.preview("alice", "team", 3)
    # When she confirms five minutes later
    h.now += 300
    result = h.service.apply("alice", preview["token"])
    # Then Stripe gets the same items and proration date, so the charge equals the amount shown
    [applied] = h.gateway.applied
    details = applied["params"]
    assert details["proration_date"] == preview["proration_date"]
    assert details["proration_behavior"] == "always_invoice"
    assert details["items"] == [{"id": "si_alice", "price": "price_team_monthly", "quantity": 3}]
    assert h.gateway.charged == [preview["amount_due_now"]]
    assert result["amount_due_now"] == preview["amount_due_now"]
    assert applied["key"] == "plan-change:tok0"
    assert set(preview) == {
        "token",
        "expires_at",
        "plan",
        "quantity",
        "amount_due_now",
        "currency",
        "proration_date",
        "next_invoice",
    }
    assert preview["next_invoice"] == {"date": PERIOD_END, "amount": 2900 * 3}


def test_control_a_fresh_proration_date_at_apply_time_charges_a_different_amount(h: Harness) -> None:
    # Control: an implementation that re-prorates "now" when applying would not charge what was shown
    preview = h.service.preview("alice", "team", 3)
    h.now += 300  # the user took five minutes to confirm
    naive_details = {"items": [{"price": "price_team_monthly", "quantity": 3}], "proration_date": int(h.now)}
    assert h.gateway.proration(naive_details) != preview["amount_due_now"]


def test_a_token_works_once(h: Harness) -> None:
    preview = h.service.preview("alice", "team", 3)
    h.service.apply("alice", preview["token"])
    with pytest.raises(errors.Conflict):
        h.service.apply("alice", preview["token"])
    assert len(h.gateway.applied) == 1


def test_an_expired_token_is_refused(h: Harness) -> None:
    preview = h.service.preview("alice", "team", 3)
    h.now += 601
    with pytest.raises(errors.Conflict):
        h.service.apply("alice", preview["token"])
    assert h.gateway.applied == []


def test_another_users_token_is_refused(h: Harness) -> None:
    preview = h.service.preview("alice", "team", 3)
    with pytest.raises(errors.Forbidden):
        h.service.apply("bob", preview["token"])
    assert h.gateway.applied == []


def tampered(token: str, **changes: Any) -> str:
    import base64

    payload, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{raw}.{signature}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: tampered(t, sub="bob"),
        lambda t: tampered(t, exp=4_000_000_000),
        lambda t: tampered(t, id="tok999"),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0] + ".",
        lambda t: "garbage-token-value",
        lambda t: TokenSigner(b"x" * 32).sign("tok0", "bob", 4_000_000_000),
    ],
)
def test_a_tampered_or_forged_token_is_refused(h: Harness, forge: Any) -> None:
    preview = h.service.preview("alice", "team", 3)
    with pytest.raises(errors.Forbidden):
        h.service.apply("bob", forge(preview["token"]))
    with pytest.raises(errors.Forbidden):
        h.service.apply("alice", forge(preview["token"]))
    assert h.gateway.applied == []


def test_a_transient_stripe_failure_keeps_the_token_usable_with_the_same_key(h: Harness) -> None:
    preview = h.service.preview("alice", "team", 3)
    h.gateway.fail_apply = errors.UpstreamUnavailable()
    with pytest.raises(errors.UpstreamUnavailable):
        h.service.apply("alice", preview["token"])
    h.gateway.fail_apply = None
    h.service.apply("alice", preview["token"])
    assert [a["key"] for a in h.gateway.applied] == ["plan-change:tok0"]


def test_only_catalog_plans_and_bounded_quantities(h: Harness) -> None:
    for request in (
        PreviewRequest(plan="enterprise", quantity=1),
        PreviewRequest(plan="team", quantity=51),
        PreviewRequest(plan="usage-pro", quantity=1),  # pricing plans switch through the portal
        PreviewRequest(plan="starter", quantity=1),  # already the current plan
    ):
        with pytest.raises(errors.InvalidRequest):
            h.service.preview("alice", request.plan, request.quantity)
    assert h.gateway.previews == []


def test_a_user_without_a_subscription_cannot_preview(h: Harness) -> None:
    with pytest.raises(errors.NotFound):
        h.service.preview("carol", "team", 3)
    h.directory.link("carol", "cus_carol")
    with pytest.raises(errors.Conflict):
        h.service.preview("carol", "team", 3)


def test_a_cached_subscription_owned_by_someone_else_in_stripe_is_never_changed(h: Harness) -> None:
    # Given the cache says Alice's subscription is one that Stripe says belongs to Bob
    bob_sub = h.subscriptions.states["cus_bob"]
    h.subscriptions.states["cus_alice"] = bob_sub.model_copy(update={"customer_id": "cus_alice"})
    with pytest.raises(errors.Conflict):
        h.service.preview("alice", "team", 3)
    assert h.gateway.previews == []


def test_a_second_previews_token_is_refused_after_the_first_change_applied(h: Harness) -> None:
    # Given Alice previews two different changes from the same starting plan
    to_three = h.service.preview("alice", "team", 3)
    to_five = h.service.preview("alice", "team", 5)
    # When she confirms the first, then the second
    h.service.apply("alice", to_three["token"])
    with pytest.raises(errors.Conflict):
        h.service.apply("alice", to_five["token"])
    # Then only the first reached Stripe, and what was charged is what was shown
    assert [a["params"]["items"][0]["quantity"] for a in h.gateway.applied] == [3]
    assert h.gateway.charged == [to_three["amount_due_now"]]


def test_control_applying_that_second_token_would_charge_a_different_amount_than_shown(h: Harness) -> None:
    # Control: the harness sees the mismatch a naive apply (no from-state check) would cause
    to_three = h.service.preview("alice", "team", 3)
    to_five = h.service.preview("alice", "team", 5)  # shown from Starter x1
    h.service.apply("alice", to_three["token"])
    params = {"items": [{"price": "price_team_monthly", "quantity": 5}], "proration_date": to_five["proration_date"]}
    assert h.gateway.charge_from_live("sub_alice", params) != to_five["amount_due_now"]


def test_a_retry_after_a_lost_answer_does_not_change_or_charge_twice(h: Harness) -> None:
    # Given Stripe applied the change but the answer was lost (a transient error for the caller)
    preview = h.service.preview("alice", "team", 3)
    h.gateway.lose_response = True
    with pytest.raises(errors.UpstreamUnavailable):
        h.service.apply("alice", preview["token"])
    h.gateway.lose_response = False
    # When the browser retries with the same token
    result = h.service.apply("alice", preview["token"])
    # Then it succeeds without a second update in Stripe, and a third use of the token is refused
    assert result["quantity"] == 3
    assert len(h.gateway.applied) == 1
    with pytest.raises(errors.Conflict):
        h.service.apply("alice", preview["token"])
