"""What the app's backend may do to a user's Stripe customer: update its details, or erase the user.

Pure decisions. An update is decided from the customer's details as Stripe has them now: only the fields that
differ are sent, nothing when Stripe already has them (so a retry after success sends nothing), and the
idempotency key names the change (customer, before, after), so a retry of one change is one Stripe call while
changing back later is a new one. Erasure is refused while a subscription Stripe may still collect on exists:
deleting the customer would cancel it at once and leave its open invoice unpaid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tollgate.domain.access import decide_checkout
from tollgate.domain.subscriptions import SubscriptionState

MAX_NAME_LENGTH = 256  # Stripe's limit for a customer's name
MAX_EMAIL_LENGTH = 512  # Stripe's limit for a customer's email


@dataclass(frozen=True, slots=True)
class CustomerDetails:
    """A customer's contact details; ``None`` means "not given" in a request, "not set" in Stripe."""

    email: str | None = None
    name: str | None = None


def details_update(current: CustomerDetails, wanted: CustomerDetails) -> dict[str, str]:
    """The fields to send to Stripe: those given in ``wanted`` that differ from ``current`` (empty: nothing to do)."""
    changes: dict[str, str] = {}
    if wanted.email is not None and wanted.email != current.email:
        changes["email"] = wanted.email
    if wanted.name is not None and wanted.name != current.name:
        changes["name"] = wanted.name
    return changes


def details_update_key(customer_id: str, current: CustomerDetails, changes: dict[str, str]) -> str:
    """Deterministic per change: the same change retried is one Stripe call; a later change back is another."""
    canonical = json.dumps(
        [customer_id, current.email, current.name, sorted(changes.items())], separators=(",", ":"), ensure_ascii=True
    )
    return "customer-details:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def erasure_key(customer_id: str) -> str:
    return f"customer-erasure:{customer_id}"


def erasure_blocker(states: list[SubscriptionState], now: int) -> SubscriptionState | None:
    """The subscription that stops an erasure (one Stripe may still collect on), or None when the user may go."""
    return decide_checkout(states, now).blocking
