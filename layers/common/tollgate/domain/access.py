"""The product's one answer to "may this customer use the paid features now?" — a pure function of the cached
subscription state, the time and a policy. Everything that grants or denies access calls ``decide_access``, and
``pick_current`` chooses, among a customer's several subscriptions, the one that decides it."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.config import Settings
from tollgate.domain.subscriptions import SubscriptionState

DAY = 86_400


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    past_due_grace_seconds: int = 7 * DAY
    #: An incomplete subscription (first payment pending, e.g. 3-D Secure) is denied unless the product opts in.
    allow_incomplete: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(
            past_due_grace_seconds=settings.past_due_grace_days * DAY,
            allow_incomplete=settings.allow_incomplete_access,
        )


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    reason: str
    #: Epoch seconds when an allowed decision lapses unless the state changes (None: open-ended or denied).
    until: int | None


def decide_access(  # noqa: C901, PLR0911 - one branch and return per rule reads as the policy table it is
    state: SubscriptionState | None, now: int, policy: AccessPolicy
) -> AccessDecision:
    if state is None:
        return AccessDecision(False, "no_subscription", None)
    if state.gone:
        return AccessDecision(False, "subscription_deleted", None)
    if state.kind == "pricing_plan_subscription":
        return _pricing_plan_access(state, now, policy)
    status = state.status
    ends = _scheduled_end(state)
    if status in ("active", "trialing"):
        if state.cancel_at_period_end or state.cancel_at is not None:
            if ends is not None and now >= ends:
                return AccessDecision(False, "canceled_period_ended", None)
            return AccessDecision(True, "cancel_at_period_end", ends)
        return AccessDecision(True, status, None)
    if status == "past_due":
        # A customer may schedule the cancellation while a renewal is failing: grace never outlasts it.
        if ends is not None and now >= ends:
            return AccessDecision(False, "canceled_period_ended", None)
        grace = _within_grace(state, now, policy)
        if grace.allowed and ends is not None and grace.until is not None and ends < grace.until:
            return AccessDecision(True, grace.reason, ends)
        return grace
    if status == "incomplete":
        if policy.allow_incomplete:
            return AccessDecision(True, "incomplete_allowed", None)
        return AccessDecision(False, "incomplete", None)
    # unpaid, paused, incomplete_expired, canceled
    return AccessDecision(False, status, None)


def _scheduled_end(state: SubscriptionState) -> int | None:
    """When a scheduled cancellation takes effect (``cancel_at`` wins over the period end), or None."""
    if state.cancel_at is not None:
        return state.cancel_at
    return state.current_period_end if state.cancel_at_period_end else None


def _within_grace(state: SubscriptionState, now: int, policy: AccessPolicy) -> AccessDecision:
    # A renewal invoice is created (and first fails) when the new period starts: grace runs from there.
    started = state.current_period_start
    if started is None:
        return AccessDecision(False, "past_due", None)
    until = started + policy.past_due_grace_seconds
    if now < until:
        return AccessDecision(True, "past_due_grace", until)
    return AccessDecision(False, "past_due_grace_expired", None)


def _pricing_plan_access(state: SubscriptionState, now: int, policy: AccessPolicy) -> AccessDecision:
    servicing = state.pricing_plan_servicing
    if servicing != "active":
        return AccessDecision(False, f"servicing_{servicing or 'pending'}", None)
    if state.pricing_plan_collection == "paused":
        return AccessDecision(False, "collection_paused", None)
    if state.pricing_plan_collection == "awaiting_customer_action":
        return _within_grace(state, now, policy)
    return AccessDecision(True, "active", None)


# Which subscription states matter most when a customer has several (e.g. an old canceled one and a new one).
_STATUS_RANK = {
    "active": 0,
    "trialing": 0,
    "past_due": 1,
    "incomplete": 2,
    "paused": 3,
    "unpaid": 4,
    "canceled": 5,
    "incomplete_expired": 6,
}


def pick_current(
    states: list[SubscriptionState], now: int | None = None, policy: AccessPolicy | None = None
) -> SubscriptionState | None:
    """The subscription that decides access: one that grants access now (given ``now``), then the best status,
    then the latest period end. Status alone misjudges e.g. an ``active`` subscription whose scheduled
    cancellation already took effect (its deletion event not yet in) beside a ``past_due`` one still in grace."""
    if not states:
        return None

    def denied(s: SubscriptionState) -> bool:
        return now is not None and not decide_access(s, now, policy or AccessPolicy()).allowed

    return min(
        states,
        key=lambda s: (denied(s), _STATUS_RANK.get(s.status, 9), -(s.current_period_end or 0), s.subscription_id),
    )
