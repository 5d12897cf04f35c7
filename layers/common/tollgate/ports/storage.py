"""What the product keeps in its table. Methods raise ``tollgate.errors`` (PersistenceUnavailable for throttling
and outages; Conflict, Forbidden where a port says so), never a botocore error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tollgate.domain.customers import CreationClaim, UserRecord
    from tollgate.domain.effects import MeterErrorReport
    from tollgate.domain.events import DomainEvent
    from tollgate.domain.plan_changes import PendingChange
    from tollgate.domain.subscriptions import StateWrite, SubscriptionState, WriteResult
    from tollgate.domain.usage_drift import Drift, SentUsage, UsageCell


# ----------------------------------------------------------------------------------------------- customers


class CustomerLookup(Protocol):
    """User -> Stripe customer, the one question the usage reporter asks."""

    def customer_for_user(self, user_id: str) -> str | None:
        """The user's customer; None when there is none or Stripe deleted it."""
        ...


class CustomerDirectory(CustomerLookup, Protocol):
    """User <-> Stripe customer mapping, and exactly-once creation of a user's customer."""

    def user_for_customer(self, customer_id: str) -> str | None: ...

    def mark_deleted(self, customer_id: str) -> None:
        """Record that Stripe deleted the customer, on both items of its mapping."""
        ...

    def link(self, user_id: str, customer_id: str, *, subscribed: bool = False) -> None:
        """Store the mapping both ways. Idempotent; a user or customer already linked elsewhere is a Conflict.
        ``subscribed``: the link comes from a subscription of this customer, recorded on the user's item for good
        (the trial policy's "had a subscription", kept when Stripe deletes the customer)."""
        ...

    def lookup(self, user_id: str) -> UserRecord:
        """The user's item as creation needs it (a strongly consistent read)."""
        ...

    def claim_creation(self, user_id: str, replacing: str | None = None) -> CreationClaim:
        """Try to become the one request that creates this user's customer (``replacing`` their deleted one)."""
        ...

    def advance_generation(self, user_id: str, seen: int) -> bool:
        """Move the creation key on from ``seen`` and release the claim; False when someone else already did."""
        ...

    def erase(self, user_id: str, customer_id: str | None) -> None:
        """Forget the user: unlink the customer (kept as deleted history) and delete the user's item."""
        ...


# ----------------------------------------------------------------------------------------------- subscriptions


class SubscriptionOwners(Protocol):
    """Which customer a subscription belongs to, as remembered from an earlier projection (thin pricing-plan
    events name only the subscription; once Stripe answers 404 nothing else does)."""

    def owner_of(self, subscription_id: str) -> str | None: ...


class SubscriptionRepository(SubscriptionOwners, Protocol):
    """The subscription projection, written only through watermark-conditional writes."""

    def for_customer(self, customer_id: str) -> list[SubscriptionState]: ...

    def current_for_customer(self, customer_id: str) -> SubscriptionState | None: ...

    def write_if_newer(self, write: StateWrite, *, after_tie: bool = False) -> WriteResult: ...

    def remember_owner(self, subscription_id: str, customer_id: str) -> None: ...


# ----------------------------------------------------------------------------------------------- webhook events


class EventClaimStatus(StrEnum):
    CLAIMED = "claimed"
    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class EventClaim:
    """The answer to claiming a Stripe event: ours (with the lease's token), done already, or held elsewhere."""

    status: EventClaimStatus
    token: str = ""


class EventLedger(Protocol):
    """At most one worker applies a Stripe event; an event counts as seen only once it committed."""

    def claim(self, event_id: str, event_type: str, lease_until: int) -> EventClaim: ...

    def complete(self, event_id: str, token: str, announcements: Sequence[DomainEvent] = ()) -> bool:
        """End our lease as COMPLETED, storing the event's announcements in the same write (the stream publishes
        them); False when the lease lapsed and another attempt took over."""
        ...

    def release(self, event_id: str, token: str) -> None: ...

    def status(self, event_id: str) -> EventClaimStatus | None: ...

    def announce(self, event_id: str, event_type: str, announcements: Sequence[DomainEvent]) -> bool:
        """Record a completed event with its announcements once; False when it was recorded before."""
        ...


class MeterErrorLog(Protocol):
    def record(self, report: MeterErrorReport) -> None: ...


# ----------------------------------------------------------------------------------------------- usage


class LedgerStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    PARKED = "PARKED"


class UsageClaim(StrEnum):
    CLAIMED = "claimed"  # new, or a retry of the same content not yet sent: send it
    ALREADY_SENT = "already_sent"  # same content already recorded: done, do not send
    CONFLICT = "conflict"  # same id, different content: park, never send
    # PENDING since before the resend window: Stripe may have it and no longer deduplicates; park, never resend
    NEEDS_RECONCILIATION = "needs_reconciliation"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    usage_id: str
    content_hash: str
    identifier: str
    occurred_at: int
    #: What the record bills (kept so usage can be reconciled with Stripe's meter totals; "" / 0 when unknown).
    event_name: str = ""
    customer_id: str = ""
    value: int = 0


@dataclass(frozen=True, slots=True)
class Settled:
    """The final word on one usage id, written after Stripe answered."""

    entry: LedgerEntry
    status: LedgerStatus
    reason: str | None = None


#: Outcomes per ``UsageLedger.settle`` call (DynamoDB's BatchWriteItem limit), so a caller's batches can run
#: concurrently, one write each.
SETTLE_BATCH_SIZE = 25


class UsageTotals(Protocol):
    """What the usage ledger recorded as sent to Stripe, per customer, meter and UTC day, for days in [start, end)."""

    def sent_between(self, start: int, end: int) -> dict[UsageCell, SentUsage]: ...


class DriftFindings(Protocol):
    """Where drift findings are recorded; a new (or changed) finding carries its domain event to the stream."""

    def record(self, drift: Drift, announcement: DomainEvent, checked_at: int) -> bool:
        """True when the finding is new or its totals changed (announced), False when it was recorded before."""
        ...


class UsageLedger(Protocol):
    """One record per usage id, so a record is billed once even after Stripe's identifier window."""

    def claim(self, entry: LedgerEntry) -> UsageClaim: ...

    def settle(self, outcomes: Sequence[Settled]) -> list[Settled]:
        """Write final statuses; returns those that could not be written (the caller retries them)."""
        ...


# ----------------------------------------------------------------------------------------------- sessions


class RateLimiter(Protocol):
    def admit(self, user_id: str) -> None:
        """Count one request for the user, or raise RateLimited when their window is full."""
        ...


class RequestWindows(Protocol):
    """Remembers when a logical request was first seen, so its repeats can share one idempotency key."""

    def first_seen(self, fingerprint: str, now: int, window_seconds: int) -> int:
        """When ``fingerprint`` was first seen within the last ``window_seconds``; ``now`` if it was not."""
        ...


class PendingChangeStore(Protocol):
    def save(self, change: PendingChange) -> None: ...

    def consume(self, token_id: str, user_id: str, now: int) -> PendingChange:
        """Mark the change used and return it; Conflict if already used, Forbidden if not this user's."""
        ...

    def release(self, token_id: str) -> None:
        """Undo ``consume`` after a transient failure, so the same token (and idempotency key) can be retried."""
        ...


class SigningSecretStore(Protocol):
    """The webhook signing secrets in the stack's secret (``webhook_secrets``), read fresh and changed in place;
    every other field of the secret (the API key) is kept as it is."""

    def fingerprints(self) -> frozenset[str]: ...

    def add(self, secret: str) -> None:
        """Put ``secret`` first, keeping the others (a rotation keeps the old one until its endpoint retires)."""
        ...

    def remove(self, fingerprints: frozenset[str]) -> int:
        """Drop the secrets with these fingerprints; how many were dropped."""
        ...
