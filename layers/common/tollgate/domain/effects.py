"""What one Stripe event (or a fetched object) means for the product, as a record the subscription write pipeline
commits: watermark-guarded state writes, a customer link, domain events to announce, and the rest.

Webhook handlers and reconcile produce ``Effects``; they never write. ``tollgate.services.subscription_writes``
applies their state writes; the webhook puts the announcements in the event's own write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tollgate.domain.events import DomainEvent
from tollgate.domain.subscriptions import StateWrite


@dataclass(frozen=True, slots=True)
class MeterErrorReport:
    """Stripe's asynchronous report of invalid meter events (``v1.billing.meter.error_report_triggered``)."""

    meter_id: str
    event_id: str
    occurred_at: int
    error_codes: tuple[str, ...]
    error_count: int
    identifiers: tuple[str, ...]
    #: The thin event's ``data`` (reason with sample errors), linked to the usage ledger by its adapter.
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Effects:
    writes: list[StateWrite] = field(default_factory=list)
    #: (subscription id, customer id) to remember before writing, for a later event that cannot name the customer.
    owner: tuple[str, str] | None = None
    #: Fetch-latest for the objects written, used when a write ties with a stored state of the same second.
    refetch: Callable[[], list[StateWrite]] | None = None
    link: tuple[str, str] | None = None  # (user_id, customer_id)
    announcements: list[DomainEvent] = field(default_factory=list)
    #: Announce even when the event's state write is stale (a newer state is in): notices such as a payment or a
    #: trial ending; False for announcements that only say "the state changed", which the newer write said.
    announce_when_stale: bool = True
    customer_deleted: str | None = None
    meter_error: MeterErrorReport | None = None
