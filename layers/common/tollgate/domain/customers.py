"""Which Stripe customer belongs to which user: the records of that mapping and the creation key's rule.

The user is the JWT ``sub``; a customer is never looked up by email (emails change and are not unique).
"""

from __future__ import annotations

from dataclasses import dataclass

NO_BILLING_ACCOUNT = "no billing account yet: start a checkout first"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """The user's mapping: the linked customer (None while creation is only claimed), whether Stripe deleted it,
    the creation key's generation, and whether the user ever had a subscription (with any customer, kept when
    Stripe deletes one: the trial policy reads it)."""

    customer_id: str | None
    generation: int = 0
    deleted: bool = False
    had_subscription: bool = False

    @property
    def live_customer_id(self) -> str | None:
        return None if self.deleted else self.customer_id


@dataclass(frozen=True, slots=True)
class CreationClaim:
    """The answer to a claim on creating a user's customer: whether it is ours, and the generation to use."""

    won: bool
    generation: int


def customer_idempotency_key(user_id: str, generation: int = 0) -> str:
    """Deterministic per user and generation: every attempt, by any request, within a generation is one call."""
    return f"customer:{user_id}:{generation}"
