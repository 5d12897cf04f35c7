"""What the product knows about one subscription, as projected from Stripe (the source of truth), and the
records that describe writing it: a state write, its watermark and what the write found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tollgate.domain.events import DomainEvent

SubscriptionStatus = Literal[
    "trialing", "active", "incomplete", "incomplete_expired", "past_due", "unpaid", "canceled", "paused"
]
SUBSCRIPTION_STATUSES: frozenset[str] = frozenset(SubscriptionStatus.__args__)  # type: ignore[attr-defined]

SubscriptionKind = Literal["subscription", "pricing_plan_subscription"]


class SubscriptionState(BaseModel):
    """One subscription as the table caches it. ``current_period_end`` comes from the subscription's items
    (API 2026-10-28: periods live on items); ``features`` are the customer's Stripe Entitlements lookup keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription_id: str
    customer_id: str
    user_id: str | None = None
    kind: SubscriptionKind = "subscription"
    status: SubscriptionStatus
    plan_key: str | None = None
    price_id: str | None = None
    quantity: int = 1
    current_period_start: int | None = None
    current_period_end: int | None = None
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    trial_end: int | None = None
    latest_invoice_id: str | None = None
    latest_invoice_status: str | None = None
    pricing_plan_servicing: str | None = None
    pricing_plan_collection: str | None = None
    features: tuple[str, ...] = ()
    #: Stripe no longer has the object (a retrieve answered 404): recorded so retries stop.
    gone: bool = False
    watermark: str = ""


@dataclass(frozen=True, slots=True, order=True)
class Watermark:
    """Order of a projected state: the Stripe event's ``created`` second, then a rank breaking ties.

    rank 1 = a snapshot carried by an event; rank 2 = the object fetched from Stripe (fetch-latest), which is at
    least as new as every event of that second that was already created when it was fetched. The encoded form
    compares as a string in DynamoDB condition expressions.
    """

    created: int
    rank: int = 1
    event_id: str = ""

    SNAPSHOT = 1
    FETCHED = 2

    def encode(self) -> str:
        return f"{self.created:012d}#{self.rank}#{self.event_id}"

    def second_floor(self) -> str:
        """Every watermark of an earlier second sorts below this string; every one of this second above it."""
        return f"{self.created:012d}#"

    @classmethod
    def decode(cls, raw: str) -> Watermark:
        created, rank, event_id = raw.split("#", 2)
        return cls(int(created), int(rank), event_id)


Aspect = Literal["subscription", "invoice", "entitlements"]
FieldValue = str | int | bool | tuple[str, ...] | None

#: Each aspect lives on its own item (a subscription, one invoice, a customer's entitlements) ordered by its
#: ``watermark``.
WATERMARK_ATTRIBUTE = "watermark"
#: The events a same-second run of writes applied to an item, so a redelivered event that ties can tell it was
#: applied already (a snapshot write starts the list, a fetch after a tie extends it).
APPLIED_EVENTS_ATTRIBUTE = "applied_events"

SUBSCRIPTION_RECORD_PREFIX = "SUBSCRIPTION#"
INVOICE_RECORD_PREFIX = "INVOICE#"
#: The record of a customer's active entitlement (feature) lookup keys.
ENTITLEMENTS_SK = "ENTITLEMENTS"


def subscription_sk(subscription_id: str) -> str:
    """The record (sort key under the customer) that holds one subscription."""
    return f"{SUBSCRIPTION_RECORD_PREFIX}{subscription_id}"


def invoice_sk(invoice_id: str, event_id: str) -> str:
    """The record (sort key under the customer) of one Stripe event about one subscription invoice: each such
    event is its own item, so none is ever stale and its announcement always rides in its one write; the latest
    invoice shown is the newest of them."""
    return f"{INVOICE_RECORD_PREFIX}{invoice_id}#{event_id}"


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One aspect of one projected object, to be written if its watermark is newer than the stored one."""

    customer_id: str
    sort_key: str
    aspect: Aspect
    fields: Mapping[str, FieldValue]
    watermark: Watermark
    #: Domain events the write carries to the stream with the state (tollgate.domain.changes).
    announcements: tuple[DomainEvent, ...] = ()


class WriteOutcome(StrEnum):
    APPLIED = "applied"
    #: The stored state is from a later second (or a fetch already covered this one): nothing to do.
    STALE = "stale"
    #: The stored state is from the same second but another event: order unknown, fetch the object.
    TIE = "tie"
    #: This very write was committed before (a retry after a crash between commit and acknowledgement).
    ALREADY_APPLIED = "already_applied"


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: WriteOutcome
    #: The item as it was before the write (APPLIED) or as it is (otherwise); empty if it did not exist.
    previous: dict[str, Any] = field(default_factory=dict)
