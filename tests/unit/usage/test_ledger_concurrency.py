"""The batch's ledger calls run concurrently (about the slowest call, not the sum), and that changes no outcome."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate.config import Settings
from tollgate.domain.usage import parse_usage_message
from tollgate.ports.storage import LedgerEntry, LedgerStatus, Settled, UsageClaim
from tollgate.ports.stripe import SendResult, SendStatus
from tollgate.services.usage_reporter import UsageReporter

from .fakes import NOW, FakeDirectory, FakeMetrics, FakeParking, FakeTransport, InMemoryLedger, record, usage


@dataclass
class InFlight:
    """Counts calls in flight; each call holds until ``target`` calls were in flight at once (or ``hold_s`` passed),
    so the peak is decided by how many calls the reporter lets overlap, not by the machine's speed."""

    target: int
    hold_s: float
    peak: int = 0
    calls: int = 0
    _now: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reached: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> None:
        with self._lock:
            self.calls += 1
            self._now += 1
            self.peak = max(self.peak, self._now)
            if self._now >= self.target:
                self._reached.set()
        self._reached.wait(self.hold_s)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._now -= 1


@dataclass
class SlowLedger(InMemoryLedger):
    """The in-memory ledger whose every call is a (simulated) DynamoDB round-trip."""

    claims_in_flight: InFlight = field(default_factory=lambda: InFlight(target=16, hold_s=5))
    settles_in_flight: InFlight = field(default_factory=lambda: InFlight(target=4, hold_s=5))

    def claim(self, entry: LedgerEntry) -> UsageClaim:
        with self.claims_in_flight:
            return super().claim(entry)

    def settle(self, outcomes: Sequence[Settled]) -> list[Settled]:
        with self.settles_in_flight:
            return super().settle(outcomes)


def reporter(ledger: InMemoryLedger, concurrency: int, **parts: Any) -> UsageReporter:
    return UsageReporter(
        ledger=ledger,
        transport=parts.get("transport") or FakeTransport(),
        directory=parts.get("directory") or FakeDirectory(),
        parking=parts.get("parking") or FakeParking(),
        metrics=parts.get("metrics") or FakeMetrics(),
        known_meters=frozenset({"api_tokens"}),
        clock=lambda: NOW,
        ledger_concurrency=concurrency,
    )


def test_a_batch_of_100_claims_16_at_a_time_and_settles_its_4_slices_at_once() -> None:
    # Given a ledger whose calls are slow round-trips, and the default concurrency of the settings
    concurrency = Settings(table_name="tollgate-test", stripe_secret_arn="arn:unused").usage_ledger_concurrency
    assert concurrency == 16
    ledger = SlowLedger()
    transport = FakeTransport()
    # When a batch of 100 new records is reported
    outcomes = reporter(ledger, concurrency, transport=transport).report(
        [record(usage(f"c-{i}"), f"m-{i}") for i in range(100)]
    )
    # Then 16 claims were in flight at once (7 waves of round-trips, not 100) and all 4 settle slices overlapped
    assert ledger.claims_in_flight.calls == 100
    assert ledger.claims_in_flight.peak == 16
    assert ledger.settles_in_flight.calls == 4
    assert ledger.settles_in_flight.peak == 4
    # And every record was sent once, in one Stripe request, and is SENT in the ledger
    assert {o.outcome.value for o in outcomes.values()} == {"sent"}
    assert len(transport.requests) == 1
    assert sorted(e.identifier for e in transport.sent) == sorted({e.identifier for e in transport.sent})
    assert {item["status"] for item in ledger.items.values()} == {LedgerStatus.SENT}


def test_control_one_at_a_time_never_overlaps_two_ledger_calls() -> None:
    # Given the same slow ledger, holding each call only briefly (nothing else will ever join it)
    ledger = SlowLedger(
        claims_in_flight=InFlight(target=16, hold_s=0.01), settles_in_flight=InFlight(target=4, hold_s=0.01)
    )
    # When the sequential reporter (concurrency 1) reports a batch of 20
    reporter(ledger, 1).report([record(usage(f"s-{i}"), f"m-{i}") for i in range(20)])
    # Then the ledger phase is the sum of its round-trips: never two calls in flight
    assert ledger.claims_in_flight.calls == 20
    assert ledger.claims_in_flight.peak == 1
    assert ledger.settles_in_flight.peak == 1


# A batch drawn from a small alphabet so repeats, conflicts and prior state collide often.
usage_ids = st.sampled_from([f"u{i}" for i in range(8)])
batch_records = st.lists(
    st.tuples(usage_ids, st.sampled_from(["user-1", "user-2", "user-gone", "user-down"]), st.integers(1, 3)),
    min_size=1,
    max_size=30,
)
prior_state = st.dictionaries(usage_ids, st.tuples(st.sampled_from(list(LedgerStatus)), st.integers(1, 3)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=batch_records,
    prior=prior_state,
    failing_claims=st.sets(usage_ids, max_size=2),
    stripe_answers=st.dictionaries(usage_ids, st.sampled_from(list(SendStatus)), max_size=3),
    settle_fails=st.booleans(),
)
def test_concurrent_claims_decide_every_record_exactly_as_sequential_claims_do(
    batch: list[tuple[str, str, int]],
    prior: dict[str, tuple[LedgerStatus, int]],
    failing_claims: set[str],
    stripe_answers: dict[str, SendStatus],
    settle_fails: bool,
) -> None:
    # Given the same batch (repeats, conflicting content, unknown and unreachable customers), the same ledger
    # state (sent, pending, parked records with equal or different content), claim failures, Stripe answers
    # and settle failures, once with one ledger call at a time and once with 16
    def run(concurrency: int) -> tuple[Any, ...]:
        ledger = InMemoryLedger(fail_claims_for=set(failing_claims), fail_settles=settle_fails)
        for usage_id, (status, value) in prior.items():
            entry_hash = usage(usage_id, value=value)  # the content the earlier record had
            ledger.items[usage_id] = {
                "content_hash": _content_hash(entry_hash),
                "status": status,
                "first_attempt_at": NOW - 3600,
            }
        transport = FakeTransport(answers={u: SendResult(d, d.value) for u, d in stripe_answers.items()})
        directory = FakeDirectory(failing={"user-down"})
        parking = FakeParking()
        metrics = FakeMetrics()
        rep = reporter(ledger, concurrency, transport=transport, directory=directory, parking=parking, metrics=metrics)
        records = [record(usage(u, user_id=user, value=v), f"m-{i}") for i, (u, user, v) in enumerate(batch)]
        outcomes = rep.report(records)
        return (
            outcomes,
            [(e.identifier, e.customer_id, e.value) for e in transport.sent],
            [(p.message_id, p.reason) for p in parking.parked],
            ledger.items,
            metrics.values,
        )

    # Then outcomes, Stripe requests, parked records, ledger and metrics are identical
    assert run(16) == run(1)


def _content_hash(body: dict[str, Any]) -> str:
    return parse_usage_message(json.dumps(body)).content_hash()
