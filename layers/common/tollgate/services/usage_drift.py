"""Usage drift check: compare, per customer, meter and UTC day, what the usage ledger recorded as sent with what
Stripe's meter event summaries count, and report (optionally repair) every difference.

Run daily by the UsageDriftFunction (EventBridge Scheduler) over the last few complete days, and on demand by
``python -m tollgate.commands.usage_drift``. Each difference is one ``UsageDrift`` metric count, one log record and
one ``usage.drift_detected`` domain event (announced once per finding). Repair (the command's ``--repair``) sends
the shortfall as meter events with deterministic identifiers, dated inside the day and within Stripe's 35-day
window; an over-count, or a day beyond the window, is reported with the manual path (a credit, an invoice
adjustment) because no meter event can take usage away after Stripe's 24-hour cancel window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from tollgate import errors
from tollgate.domain.usage_drift import (
    DAY,
    Drift,
    SentUsage,
    UsageCell,
    drift_event,
    find_drift,
    repair_events,
    repair_path,
    utc_day,
)
from tollgate.observability import MetricName, MetricUnit, logger
from tollgate.ports.storage import DriftFindings, UsageTotals
from tollgate.ports.stripe import MeterEvent, MeterTotals, MeterTransport, MeterView, SendResult, SendStatus

#: Stripe's summaries are only as old as its meter events: 35 days back at most.
MAX_DAYS = 35
#: Concurrent summary reads: one per customer and meter, within Stripe's rate limit (25/s sandbox, 100/s live).
SUMMARY_CONCURRENCY = 8
#: A repair event Stripe took, or already had from an earlier repair run (same identifier).
REPAIR_LANDED = frozenset({SendStatus.ACCEPTED, SendStatus.DUPLICATE})


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: MetricUnit, value: float) -> None: ...


@dataclass
class DriftReport:
    days: list[int]
    cells_checked: int = 0
    drifts: list[Drift] = field(default_factory=list)
    announced: int = 0
    repaired: dict[UsageCell, int] = field(default_factory=dict)  # cell -> units sent to Stripe
    unrepaired: list[str] = field(default_factory=list)  # why a repair did not go out, one line per cell


@dataclass
class UsageDriftCheck:
    totals: UsageTotals
    meters: MeterTotals
    findings: DriftFindings
    transport: Callable[[], MeterTransport]
    metrics: MetricsSink
    clock: Callable[[], float]
    concurrency: int = SUMMARY_CONCURRENCY

    def check(self, days: Sequence[int], *, repair: bool = False) -> DriftReport:
        """Check the UTC days starting at ``days`` (each a multiple of 86,400, complete and within 35 days)."""
        now = self.clock()
        self._validate(days, now)
        report = DriftReport(days=sorted(days))
        start, end = report.days[0], report.days[-1] + DAY
        sent = {c: u for c, u in self.totals.sent_between(start, end).items() if c.day in days}
        meters = {m.event_name: m for m in self.meters.active_meters()}
        formulas = {name: m.formula for name, m in meters.items()}
        counted = self._counted(sent, meters, start, end, set(days))
        report.cells_checked = len(set(sent) | set(counted))
        report.drifts = find_drift(sent, counted, formulas)
        for drift in report.drifts:
            self._report(drift, int(now), report)
        if repair:
            self._repair(report, now)
        self.metrics.add_metric(name=MetricName.USAGE_DRIFT, unit=MetricUnit.Count, value=len(report.drifts))
        logger.info(
            "usage drift checked",
            days=len(days),
            cells=report.cells_checked,
            drifts=len(report.drifts),
            repaired=len(report.repaired),
        )
        return report

    def check_recent(self, days_back: int, *, repair: bool = False) -> DriftReport:
        """The ``days_back`` complete UTC days before today."""
        today = utc_day(self.clock())
        return self.check([today - n * DAY for n in range(1, days_back + 1)], repair=repair)

    def _validate(self, days: Sequence[int], now: float) -> None:
        if not days:
            raise errors.InvalidRequest("no day to check")
        today = utc_day(now)
        for day in days:
            if day % DAY or day >= today:
                raise errors.InvalidRequest("each day must be a complete UTC day before today")
            if day < today - MAX_DAYS * DAY:
                raise errors.InvalidRequest(f"days older than {MAX_DAYS} days are beyond Stripe's meter window")

    def _counted(
        self, sent: Mapping[UsageCell, SentUsage], meters: Mapping[str, MeterView], start: int, end: int, days: set[int]
    ) -> dict[UsageCell, int]:
        """Stripe's totals for every customer and meter the ledger sent to in the window: one summary listing per
        pair, grouped by day (a meter with no active definition is skipped: its usage cannot be summarised)."""
        pairs = sorted({(c.customer_id, c.event_name) for c in sent if c.event_name in meters})

        def totals_for(pair: tuple[str, str]) -> Iterable[tuple[UsageCell, int]]:
            customer, event_name = pair
            daily = self.meters.daily_totals(meters[event_name].id, customer, start, end)
            return [(UsageCell(day, customer, event_name), value) for day, value in daily.items() if day in days]

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return {cell: value for found in pool.map(totals_for, pairs) for cell, value in found}

    def _report(self, drift: Drift, now: int, report: DriftReport) -> None:
        logger.warning(
            "usage drift",
            customer_id=drift.cell.customer_id,
            event_name=drift.cell.event_name,
            day=drift.cell.day,
            sent=drift.sent,
            counted=drift.counted,
            repair=repair_path(drift, now),
        )
        if self.findings.record(drift, drift_event(drift, now), now):
            report.announced += 1

    def _repair(self, report: DriftReport, now: float) -> None:
        transport = self.transport()
        for drift in report.drifts:
            events = [
                MeterEvent(r.identifier, drift.cell.event_name, drift.cell.customer_id, r.value, r.timestamp)
                for r in repair_events(drift, now)
            ]
            if not events:
                report.unrepaired.append(f"{_describe(drift)}: {repair_path(drift, now)} by hand")
                continue
            results: dict[str, SendResult] = {}
            for start in range(0, len(events), transport.max_batch):
                results.update(transport.send(events[start : start + transport.max_batch]))
            failed = [r for r in results.values() if r.status not in REPAIR_LANDED]
            if failed:
                report.unrepaired.append(f"{_describe(drift)}: Stripe refused the repair ({len(failed)} events)")
                continue
            report.repaired[drift.cell] = drift.missing
            logger.info(
                "usage drift repaired",
                customer_id=drift.cell.customer_id,
                event_name=drift.cell.event_name,
                day=drift.cell.day,
                units=drift.missing,
            )


def _describe(drift: Drift) -> str:
    return f"{drift.cell.customer_id} {drift.cell.event_name} day {drift.cell.day}"
