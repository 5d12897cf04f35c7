"""The one access decision: every status, the grace period, cancel-at-period-end and the pricing-plan states."""

from __future__ import annotations

import pytest

from tollgate.config import Settings
from tollgate.domain.access import (
    DAY,
    AccessDecision,
    AccessPolicy,
    decide_access,
    decide_checkout,
    trial_allowed,
)
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

    settings = Settings(table_name="t-x", stripe_secret_arn="arn", past_due_grace="days", past_due_grace_days=3)
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


# ----------------------------------------------------------------------------------------------- dunning default


def test_the_default_dunning_policy_waits_for_stripe() -> None:
    # Given the configuration's defaults (PAST_DUE_GRACE unset; PAST_DUE_GRACE_DAYS keeps its 7 for "days")
    settings = Settings(table_name="t-x", stripe_secret_arn="arn")
    assert settings.past_due_grace == "until_stripe_gives_up"
    assert AccessPolicy.from_settings(settings) == AccessPolicy()
    assert AccessPolicy().past_due_grace_seconds is None


def test_with_the_default_access_holds_through_every_retry_and_ends_at_unpaid() -> None:
    # Given a renewal that failed at the period start and Stripe's default smart retries (up to 8 over 2 weeks,
    # here every 2 days through day 14, then 21 days for a custom schedule)
    policy = AccessPolicy()
    started = NOW
    retries = [started + d * DAY for d in (0, 1, 3, 5, 7, 9, 11, 14, 21)]
    past_due = state(status="past_due", current_period_start=started, current_period_end=started + 30 * DAY)
    # When deciding at each retry while the subscription stays past_due
    decisions = [decide_access(past_due, at, policy) for at in retries]
    # Then every one grants access, open-ended (no clock of ours ends it)
    assert {(d.allowed, d.reason, d.until) for d in decisions} == {(True, "past_due_retrying", None)}
    # And when Stripe gives up (unpaid, or canceled), access ends
    assert decide_access(state(status="unpaid"), retries[-1] + 1, policy) == AccessDecision(False, "unpaid", None)
    assert not decide_access(state(status="canceled"), retries[-1] + 1, policy).allowed
    # Control: the 7-day option ends access while Stripe is still retrying
    seven = AccessPolicy(past_due_grace_seconds=7 * DAY)
    assert [decide_access(past_due, at, seven).allowed for at in retries].count(False) == 5


def test_the_default_still_ends_at_a_scheduled_cancellation() -> None:
    past_due = state(status="past_due", cancel_at_period_end=True, current_period_end=NOW + DAY)
    assert decide_access(past_due, NOW, AccessPolicy()).allowed
    assert decide_access(past_due, NOW + DAY, AccessPolicy()).reason == "canceled_period_ended"


# ----------------------------------------------------------------------------------------------- one live subscription


@pytest.mark.parametrize("status", ["active", "trialing", "past_due", "unpaid", "paused", "incomplete"])
def test_a_subscription_stripe_may_collect_on_blocks_checkout(status: str) -> None:
    decision = decide_checkout([state(status=status)], NOW)
    assert (decision.allowed, decision.blocking) == (False, state(status=status))


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired"])
def test_an_ended_subscription_does_not_block_checkout(status: str) -> None:
    assert decide_checkout([state(status=status)], NOW).allowed


def test_an_unpaid_subscription_blocks_checkout_although_it_grants_no_access() -> None:
    # Control for the old rule ("refuse only while access is granted"): unpaid is denied access, yet blocks
    unpaid = state(status="unpaid")
    assert not decide_access(unpaid, NOW, AccessPolicy()).allowed
    decision = decide_checkout([state(subscription_id="sub_old", status="canceled"), unpaid], NOW)
    assert (decision.allowed, decision.remedy) == (False, "pay_invoice")


def test_a_gone_or_already_ended_subscription_does_not_block_checkout() -> None:
    assert decide_checkout([state(gone=True)], NOW).allowed
    assert decide_checkout([state(cancel_at=NOW - 1)], NOW).allowed
    assert decide_checkout([], NOW).allowed


# ----------------------------------------------------------------------------------------------- trial policy


@pytest.mark.parametrize(
    ("policy", "had", "allowed"),
    [
        ("once_per_user", False, True),
        ("once_per_user", True, False),
        ("always", True, True),
        ("always", False, True),
        ("never", False, False),
        ("never", True, False),
    ],
)
def test_trial_policy(policy: str, had: bool, allowed: bool) -> None:
    assert trial_allowed(policy, had) is allowed  # type: ignore[arg-type]
