"""Cancel at period end and resume, for the signed-in user: which subscription, and the one Stripe update that
gets it to the asked state (or none, when Stripe already has it so).

The projection does not change here: Stripe's ``customer.subscription.updated`` comes back through the webhook,
like a change made in the portal, and the stream announces ``subscription.cancellation_scheduled`` /
``subscription.renewed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tollgate import errors

CancellationChange = Literal["cancel", "resume"]

#: Statuses whose renewal a customer may still schedule away (or back): Stripe refuses a canceled or
#: incomplete_expired subscription, and an incomplete one has no period to end.
CHANGEABLE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "paused"})


@dataclass(frozen=True, slots=True)
class LiveSubscription:
    """What a cancellation needs from the subscription as Stripe has it now."""

    id: str
    customer_id: str
    status: str
    cancel_at_period_end: bool
    cancel_at: int | None
    current_period_end: int | None


def cancellation_update(sub: LiveSubscription, change: CancellationChange, now: int) -> dict[str, Any] | None:
    """The Stripe update for ``change``; None when Stripe already has it (the request is done, idempotently).

    A cancellation at a fixed date (``cancel_at``, set in the portal or the Dashboard) is not this route's to
    move: cancel leaves it as it is (it already ends), resume clears it too."""
    if sub.status not in CHANGEABLE_STATUSES:
        raise errors.Conflict("no subscription to change: it has ended")
    ends = sub.cancel_at if sub.cancel_at is not None else sub.current_period_end
    scheduled = sub.cancel_at_period_end or sub.cancel_at is not None
    if scheduled and ends is not None and now >= ends:
        raise errors.Conflict("the subscription has ended: start a new checkout")
    if change == "cancel":
        return None if scheduled else {"cancel_at_period_end": True}
    if not scheduled:
        return None
    params: dict[str, Any] = {"cancel_at_period_end": False}
    if sub.cancel_at is not None and not sub.cancel_at_period_end:
        params = {"cancel_at": ""}  # Stripe's way to unset a field on a form-encoded update
    return params
