"""The product's one answer to "may this customer use the paid features now?" — a pure function of the cached
subscription state, the time and a policy. Everything that grants or denies access calls ``decide_access``, and
``pick_current`` chooses, among a customer's several subscriptions, the one that decides it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tollgate.config import Settings
from tollgate.domain.subscriptions import SubscriptionState

DAY = 86_400

#: Statuses of a subscription Stripe may still collect on (or that still runs): a user holding one must manage or
#: pay it (the portal, the open invoice) instead of starting a second subscription beside it.
COLLECTABLE_STATUSES: frozenset[str] = frozenset({"active", "trialing", "past_due", "unpaid", "paused", "incomplete"})

TrialPolicy = Literal["once_per_user", "always", "never"]


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    #: How long a past_due subscription keeps access from its current period start; None: until Stripe gives up
    #: (its retries end in ``unpaid`` or ``canceled``, per the account's revenue recovery settings).
    past_due_grace_seconds: int | None = None
    #: An incomplete subscription (first payment pending, e.g. 3-D Secure) is denied unless the product opts in.
    allow_incomplete: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        days = settings.past_due_grace_days if settings.past_due_grace == "days" else None
        return cls(
            past_due_grace_seconds=None if days is None else days * DAY,
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
    if policy.past_due_grace_seconds is None:
        # Stripe is still retrying the renewal: access holds until its retries end in unpaid or canceled.
        return AccessDecision(True, "past_due_retrying", None)
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


@dataclass(frozen=True, slots=True)
class CheckoutDecision:
    """Whether the user may open a new Checkout: refused while a subscription Stripe may still collect on exists,
    with that subscription, so the caller can point at the portal or at the invoice to pay."""

    allowed: bool
    blocking: SubscriptionState | None = None

    @property
    def remedy(self) -> str:
        if self.blocking is None:
            return ""
        if self.blocking.status in ("past_due", "unpaid", "incomplete"):
            return "pay_invoice"
        return "portal"


def decide_checkout(states: list[SubscriptionState], now: int) -> CheckoutDecision:
    """One live subscription per user: any subscription in a collectable status blocks a second one, whatever
    access it grants (an ``unpaid`` one is denied access yet Stripe may still collect its open invoice). A
    scheduled cancellation that already took effect (its deletion event not in yet) no longer blocks."""
    for state in sorted(states, key=lambda s: (_STATUS_RANK.get(s.status, 9), s.subscription_id)):
        if state.gone or state.status not in COLLECTABLE_STATUSES:
            continue
        ends = _scheduled_end(state)
        if ends is not None and now >= ends:
            continue
        return CheckoutDecision(False, state)
    return CheckoutDecision(True)


def trial_allowed(policy: TrialPolicy, had_subscription: bool) -> bool:
    """Whether a new Checkout carries the catalog plan's trial: ``once_per_user`` only to a user who never had a
    subscription (with any of their customers, deleted ones included), ``always``, or ``never``."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    return not had_subscription
