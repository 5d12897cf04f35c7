"""The drift rules on plain values: which cells drift, aggregated like the meter, and what repairs a shortfall."""

from __future__ import annotations

from tollgate.domain.usage_drift import (
    DAY,
    Drift,
    SentUsage,
    UsageCell,
    drift_event,
    find_drift,
    repair_events,
    repair_path,
    repair_timestamp,
    utc_day,
)

TODAY = 1_796_169_600  # 2026-12-02T00:00:00Z
NOW = TODAY + 6 * 3600
YESTERDAY = TODAY - DAY


def cell(customer: str = "cus_1", meter: str = "api_tokens", day: int = YESTERDAY) -> UsageCell:
    return UsageCell(day, customer, meter)


def test_only_cells_whose_totals_differ_drift_in_a_stable_order() -> None:
    sent = {cell("cus_2"): SentUsage(2, 10), cell("cus_1"): SentUsage(3, 9), cell("cus_3"): SentUsage(1, 4)}
    counted = {cell("cus_2"): 10, cell("cus_1"): 7, cell("cus_4"): 5}
    drifts = find_drift(sent, counted, {"api_tokens": "sum"})
    assert [(d.cell.customer_id, d.sent, d.counted) for d in drifts] == [
        ("cus_1", 9, 7),
        ("cus_3", 4, 0),
        ("cus_4", 0, 5),
    ]


def test_a_count_meter_compares_records_and_a_last_meter_is_not_compared() -> None:
    sent = {cell(meter="calls"): SentUsage(3, 90), cell(meter="seats"): SentUsage(2, 8)}
    counted = {cell(meter="calls"): 3, cell(meter="seats"): 1}
    assert find_drift(sent, counted, {"calls": "count", "seats": "last"}) == []
    assert [d.sent for d in find_drift(sent, {cell(meter="calls"): 2}, {"calls": "count"})] == [3]


def test_a_meter_without_an_active_definition_is_skipped() -> None:
    assert find_drift({cell(meter="gone"): SentUsage(1, 1)}, {}, {"api_tokens": "sum"}) == []


def test_a_sum_shortfall_is_repaired_by_one_event_dated_inside_its_day() -> None:
    drift = Drift(cell(), "sum", sent=20, counted=15)
    events = repair_events(drift, NOW)
    assert [(e.value, e.timestamp) for e in events] == [(5, YESTERDAY + DAY - 1)]
    assert events[0].identifier.startswith("tgfix_")
    # The same shortfall gives the same identifier (a rerun is deduplicated by Stripe); another shortfall another
    assert repair_events(drift, NOW + 60) == events
    assert repair_events(Drift(cell(), "sum", 20, 14), NOW)[0].identifier != events[0].identifier


def test_a_count_shortfall_is_one_event_per_missing_count() -> None:
    events = repair_events(Drift(cell(), "count", sent=5, counted=2), NOW)
    assert [e.value for e in events] == [1, 1, 1]
    assert len({e.identifier for e in events}) == 3


def test_an_over_count_or_a_day_beyond_stripes_window_gets_no_repair_event() -> None:
    assert repair_events(Drift(cell(), "sum", sent=5, counted=8), NOW) == []
    old = cell(day=TODAY - 36 * DAY)
    assert repair_timestamp(old, NOW) is None
    assert repair_events(Drift(old, "sum", 5, 1), NOW) == []
    assert repair_path(Drift(old, "sum", 5, 1), NOW) == "invoice_adjustment"
    assert repair_path(Drift(cell(), "sum", 5, 8), NOW) == "credit"
    assert repair_path(Drift(cell(), "sum", 8, 5), NOW) == "resend"


def test_a_repair_is_never_dated_in_the_future() -> None:
    # Just after midnight, yesterday's last second is in the past; a repair for "today" would not be
    assert repair_timestamp(cell(day=YESTERDAY), TODAY + 5) == TODAY + 5 - 60
    assert repair_timestamp(cell(day=TODAY), TODAY + 5) is None


def test_the_domain_event_names_the_finding() -> None:
    event = drift_event(Drift(cell(), "sum", 20, 15), NOW)
    assert event.name == "usage.drift_detected"
    assert event.customer_id == "cus_1"
    assert event.data == {"event_name": "api_tokens", "day": YESTERDAY, "sent": 20, "counted": 15, "repair": "resend"}
    assert drift_event(Drift(cell(), "sum", 20, 15), NOW + 99).id == event.id


def test_utc_day() -> None:
    assert utc_day(NOW) == TODAY
    assert utc_day(TODAY) == TODAY
    assert utc_day(TODAY - 1) == YESTERDAY
