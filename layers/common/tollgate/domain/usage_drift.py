"""Usage drift: where what the product sent to Stripe and what Stripe's meters counted disagree, per customer,
meter and UTC day, and the events that repair a shortfall.

The usage ledger is what the product knows it sent (each SENT record: identifier, customer, meter, value, day);
Stripe's meter event summaries are what Stripe bills. They differ when an event was canceled or lost on Stripe's
side, or when something other than this product reports to the same meter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from tollgate.domain.events import DomainEvent

DAY = 86_400
#: Stripe accepts meter events up to 35 days old (a margin for the time a repair takes to arrive).
STRIPE_PAST_LIMIT_SECONDS = 35 * DAY - 600
#: Stripe rejects timestamps more than 5 minutes ahead; a repair is dated at least this far in the past.
REPAIR_CLOCK_MARGIN_SECONDS = 60
#: Meter formulas the ledger can be compared with ("last" keeps one value per window: nothing to sum).
COMPARABLE_FORMULAS = frozenset({"sum", "count"})


@dataclass(frozen=True, slots=True, order=True)
class UsageCell:
    """One customer's usage of one meter on one UTC day (epoch seconds of its start)."""

    day: int
    customer_id: str
    event_name: str


@dataclass(frozen=True, slots=True)
class SentUsage:
    """What the ledger recorded as sent for one cell: how many records and the sum of their values."""

    records: int
    value: int

    def __add__(self, other: SentUsage) -> SentUsage:
        return SentUsage(self.records + other.records, self.value + other.value)

    def as_counted_by(self, formula: str) -> int:
        """The total a meter with this aggregation formula should show for these records."""
        return self.records if formula == "count" else self.value


@dataclass(frozen=True, slots=True)
class Drift:
    cell: UsageCell
    formula: str
    sent: int  # what the usage ledger recorded as sent, aggregated like the meter
    counted: int  # what Stripe's meter event summaries say

    @property
    def missing(self) -> int:
        """Positive: Stripe counted less than was sent (repairable by sending the difference); negative: more."""
        return self.sent - self.counted


def find_drift(
    sent: Mapping[UsageCell, SentUsage], counted: Mapping[UsageCell, int], formulas: Mapping[str, str]
) -> list[Drift]:
    """Every cell of a comparable meter where the totals differ, in a stable order."""
    drifts = []
    for cell in sorted(set(sent) | set(counted)):
        formula = formulas.get(cell.event_name)
        if formula not in COMPARABLE_FORMULAS:
            continue
        expected = sent.get(cell, SentUsage(0, 0)).as_counted_by(formula)
        actual = counted.get(cell, 0)
        if expected != actual:
            drifts.append(Drift(cell, formula, expected, actual))
    return drifts


def utc_day(timestamp: float) -> int:
    """The start (epoch seconds) of the UTC day holding ``timestamp``."""
    return int(timestamp) // DAY * DAY


@dataclass(frozen=True, slots=True)
class RepairEvent:
    identifier: str
    value: int
    timestamp: int


def repair_events(drift: Drift, now: float) -> list[RepairEvent]:
    """The meter events that bring Stripe's total for a shortfall up to what was sent (none for an over-count, or
    for a day beyond Stripe's 35-day window: those need a credit or an invoice adjustment).

    Identifiers are deterministic for this shortfall: a repair run twice sends the same events (Stripe deduplicates
    them), and once Stripe counts them the cell no longer drifts, so no second repair is computed. A ``sum`` meter
    gets one event for the difference; a ``count`` meter one event per missing count.
    """
    timestamp = repair_timestamp(drift.cell, now)
    if drift.missing <= 0 or timestamp is None:
        return []
    cell = drift.cell
    basis = f"{cell.customer_id}|{cell.event_name}|{cell.day}|{drift.sent}|{drift.counted}"
    stem = f"tgfix_{hashlib.sha256(basis.encode()).hexdigest()[:24]}"
    if drift.formula == "count":
        return [RepairEvent(f"{stem}_{n}", 1, timestamp) for n in range(drift.missing)]
    return [RepairEvent(stem, drift.missing, timestamp)]


def repair_timestamp(cell: UsageCell, now: float) -> int | None:
    """When a repair event is dated: inside the drifting day, as late as Stripe's clock allows; None when the day is
    beyond Stripe's window."""
    latest = min(cell.day + DAY - 1, int(now) - REPAIR_CLOCK_MARGIN_SECONDS)
    return latest if latest >= cell.day and latest >= now - STRIPE_PAST_LIMIT_SECONDS else None


def repair_path(drift: Drift, now: float) -> str:
    """What an operator does about one drift (logged with it, and in the domain event)."""
    if drift.missing < 0:
        return "credit"  # Stripe counted more than was sent: a credit note or invoice item, not a meter event
    return "resend" if repair_timestamp(drift.cell, now) is not None else "invoice_adjustment"


def drift_event(drift: Drift, checked_at: int) -> DomainEvent:
    """``usage.drift_detected``; its id names the finding (cell and both totals), so one finding announces once."""
    cell = drift.cell
    finding = f"drift_{cell.day}_{cell.customer_id}_{cell.event_name}_{drift.sent}_{drift.counted}"
    return DomainEvent(
        id=f"{finding}:usage.drift_detected",
        name="usage.drift_detected",
        occurred_at=checked_at,
        customer_id=cell.customer_id,
        stripe_event_id=finding,
        data={
            "event_name": cell.event_name,
            "day": cell.day,
            "sent": drift.sent,
            "counted": drift.counted,
            "repair": repair_path(drift, checked_at),
        },
    )
