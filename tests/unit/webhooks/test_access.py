"""The one access decision: every status, the grace period, cancel-at-period-end and the pricing-plan states."""

from __future__ import annotations

import pytest

from tollgate.domain.access import DAY, AccessDecision, AccessPolicy, decide_access
from tollgate.domain.subscriptions import SubscriptionState

NOW = 1_800_000_000
POLICY = AccessPolicy(past_due_grace_seconds=7 * DAY)


def state(**overrides: object) -> SubscriptionState:
    values: dict[str, object] = {
        "subscription_id": "sub_1",
        "customer_id": "cus_1",
        "status": "active",
        "current_period_start": NOW - 10 * DAY,
        "current_period_end": NOW + 20 * DAY,
    }
    values.update(overrides)
    return SubscriptionState.model_validate(values)


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_active_and_trialing_are_allowed_open_ended(status: str) -> None:
    # Given a paying or trialing subscription / When deciding / Then access is granted with no end
    decision = decide_access(state(status=status), NOW, POLICY)
    assert (decision.allowed, decision.reason, decision.until) == (True, status, None)


@pytest.mark.parametrize("status", ["unpaid", "paused", "incomplete_expired", "canceled"])
def test_terminal_and_suspended_statuses_are_denied(status: str) -> None:
    decision = decide_access(state(status=status), NOW, POLICY)
    assert (decision.allowed, decision.reason) == (False, status)


def test_no_subscription_is_denied() -> None:
    assert decide_access(None, NOW, POLICY).reason == "no_subscription"


def test_past_due_is_allowed_until_the_grace_period_ends() -> None:
    # Given a renewal that failed when the current period started 2 days ago
    s = state(status="past_due", current_period_start=NOW - 2 * DAY)
    # When deciding now, and again after the 7-day grace
    inside = decide_access(s, NOW, POLICY)
    after = decide_access(s, NOW + 5 * DAY, POLICY)
    # Then access holds until period start + grace, then lapses
    assert (inside.allowed, inside.reason, inside.until) == (True, "past_due_grace", NOW + 5 * DAY)
    assert (after.allowed, after.reason) == (False, "past_due_grace_expired")


def test_zero_grace_denies_past_due_at_once() -> None:
    assert not decide_access(state(status="past_due"), NOW, AccessPolicy(past_due_grace_seconds=0)).allowed


def test_incomplete_is_denied_by_default_and_allowed_when_configured() -> None:
    s = state(status="incomplete")
    assert decide_access(s, NOW, POLICY).allowed is False
    assert decide_access(s, NOW, AccessPolicy(allow_incomplete=True)).allowed is True


def test_cancel_at_period_end_keeps_access_until_the_period_ends() -> None:
    # Given a subscription the customer canceled in the portal
    s = state(cancel_at_period_end=True)
    # Then it is allowed until the period end, and denied from then on
    before = decide_access(s, NOW, POLICY)
    assert (before.allowed, before.reason, before.until) == (True, "cancel_at_period_end", NOW + 20 * DAY)
    assert decide_access(s, NOW + 20 * DAY, POLICY).allowed is False


def test_a_deleted_object_is_denied() -> None:
    assert decide_access(state(gone=True), NOW, POLICY).reason == "subscription_deleted"


@pytest.mark.parametrize(
    ("servicing", "collection", "allowed"),
    [
        ("active", "current", True),
        ("active", "awaiting_customer_action", True),
        ("active", "paused", False),
        ("paused", "current", False),
        ("canceled", "current", False),
        (None, None, False),
    ],
)
def test_pricing_plan_subscriptions_follow_servicing_and_collection(
    servicing: str | None, collection: str | None, allowed: bool
) -> None:
    s = state(
        kind="pricing_plan_subscription",
        pricing_plan_servicing=servicing,
        pricing_plan_collection=collection,
        current_period_start=NOW - DAY,  # awaiting action for a day: inside the grace period
    )
    assert decide_access(s, NOW, POLICY).allowed is allowed


def test_policy_reads_grace_days_from_settings() -> None:
    from tollgate.config import Settings

    settings = Settings(table_name="t-x", stripe_secret_arn="arn", past_due_grace_days=3)
    assert AccessPolicy.from_settings(settings).past_due_grace_seconds == 3 * DAY


def test_policy_reads_incomplete_access_from_settings_and_environment() -> None:
    from tollgate.config import Settings

    # Given the default configuration and one that opts in through the environment
    default = Settings(table_name="t-x", stripe_secret_arn="arn")
    opted_in = Settings.from_environment(
        {"TABLE_NAME": "t-x", "STRIPE_SECRET_ARN": "arn", "ALLOW_INCOMPLETE_ACCESS": "true"}
    )
    # When deciding an incomplete subscription / Then it is denied by default and allowed once configured
    s = state(status="incomplete")
    assert decide_access(s, NOW, AccessPolicy.from_settings(default)).allowed is False
    assert decide_access(s, NOW, AccessPolicy.from_settings(opted_in)) == AccessDecision(
        True, "incomplete_allowed", None
    )


def test_past_due_grace_never_outlasts_a_scheduled_cancellation() -> None:
    # Given a failing renewal 2 days into a weekly period, which the customer then cancels at period end
    s = state(
        status="past_due",
        current_period_start=NOW - 2 * DAY,
        current_period_end=NOW + 5 * DAY - 3600,
        cancel_at_period_end=True,
    )
    # When deciding inside the grace period, and after the period ended but before the grace would have
    inside = decide_access(s, NOW, POLICY)
    after = decide_access(s, NOW + 5 * DAY - 60, POLICY)
    # Then access lasts until the cancellation, not until the grace end
    assert (inside.allowed, inside.reason, inside.until) == (True, "past_due_grace", NOW + 5 * DAY - 3600)
    assert (after.allowed, after.reason) == (False, "canceled_period_ended")


def test_a_past_due_subscription_past_its_cancel_at_is_denied() -> None:
    s = state(status="past_due", current_period_start=NOW - DAY, cancel_at=NOW - 60)
    assert decide_access(s, NOW, POLICY) == AccessDecision(False, "canceled_period_ended", None)


def test_a_canceled_subscription_is_denied_even_before_its_period_would_have_ended() -> None:
    # Given a subscription canceled immediately (status canceled), its last period still running
    s = state(status="canceled", current_period_end=NOW + 20 * DAY, cancel_at_period_end=True)
    # Then access ends with the cancellation: only cancel_at_period_end on a live subscription keeps it
    assert decide_access(s, NOW, POLICY) == AccessDecision(False, "canceled", None)


def test_a_trialing_subscription_set_to_cancel_keeps_access_until_the_trial_period_ends() -> None:
    s = state(status="trialing", trial_end=NOW + 3 * DAY, current_period_end=NOW + 3 * DAY, cancel_at_period_end=True)
    assert decide_access(s, NOW, POLICY) == AccessDecision(True, "cancel_at_period_end", NOW + 3 * DAY)
    assert decide_access(s, NOW + 3 * DAY, POLICY).allowed is False
