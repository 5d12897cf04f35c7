"""The reporter use case on in-memory fakes: per-record outcomes, parking without Stripe calls, exactly once."""

from __future__ import annotations

import json

import pytest

from tollgate.errors import ConfigurationError
from tollgate.ports.stripe import SendResult, SendStatus
from tollgate.services.usage_reporter import UsageOutcome, UsageReporter

from .fakes import NOW, FakeDirectory, FakeMetrics, FakeParking, FakeTransport, InMemoryLedger, record, usage

DAY = 86_400


@pytest.fixture
def parts() -> tuple[InMemoryLedger, FakeTransport, FakeDirectory, FakeParking, FakeMetrics]:
    return InMemoryLedger(), FakeTransport(), FakeDirectory(), FakeParking(), FakeMetrics()


def reporter(parts, known_meters: frozenset[str] | None = frozenset({"api_tokens"})) -> UsageReporter:  # type: ignore[no-untyped-def]
    ledger, transport, directory, parking, metrics = parts
    return UsageReporter(
        ledger=ledger,
        transport=transport,
        directory=directory,
        parking=parking,
        metrics=metrics,
        known_meters=known_meters,
        clock=lambda: NOW,
    )


def test_valid_records_go_to_stripe_in_one_request_with_mapped_customers(parts) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, _, metrics = parts
    # Given 3 records of two users and one given by Stripe customer id
    records = [
        record(usage("a", user_id="user-1")),
        record(usage("b", user_id="user-2", value=7)),
        record(usage("c", user_id=None, stripe_customer_id="cus_Direct")),
    ]
    # When the batch is reported
    outcomes = reporter(parts).report(records)
    # Then all are sent in one Stripe request, each to its customer, with the value as given
    assert {o.outcome for o in outcomes.values()} == {UsageOutcome.SENT}
    assert len(transport.requests) == 1
    assert [(e.customer_id, e.value) for e in transport.sent] == [("cus_One", 5), ("cus_Two", 7), ("cus_Direct", 5)]
    assert metrics.values["UsageSent"] == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "invalid_json"),
        (json.dumps(usage("neg", value=-3)), "invalid_value"),
        (
            '{"schema_version":1,"usage_id":"nan","event_name":"api_tokens","user_id":"user-1","value":NaN,'
            '"occurred_at":1789999000}',
            "invalid_value",
        ),
        (json.dumps(usage("float", value=1.5)), "invalid_value"),
        (json.dumps(usage("nocus", user_id=None)), "invalid_customer"),
        (json.dumps(usage("unmapped", user_id="nobody")), "unknown_customer"),
        (json.dumps(usage("meter", event_name="gpu_seconds")), "unknown_meter"),
        (json.dumps(usage("big")) + " " * 5000, "oversize"),
        (json.dumps(usage("old", occurred_at=NOW - 36 * DAY)), "timestamp_too_old"),
        (json.dumps(usage("future", occurred_at=NOW + 6 * 60)), "timestamp_in_future"),
    ],
)
def test_a_permanently_bad_record_is_parked_without_a_stripe_call_and_siblings_are_sent(parts, body, reason) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, parking, metrics = parts
    # Given a bad record between two valid siblings
    bad = record(body, "bad")
    records = [record(usage("ok-1"), "ok-1"), bad, record(usage("ok-2"), "ok-2")]
    # When the batch is reported
    outcomes = reporter(parts).report(records)
    # Then the bad one is parked with its reason and never reaches Stripe; the siblings are sent
    assert outcomes["bad"].outcome is UsageOutcome.PARKED
    assert outcomes["bad"].reason == reason
    assert [p.message_id for p in parking.parked] == ["bad"]
    assert [e.identifier.split("_")[1] for e in transport.sent] == ["ok-1", "ok-2"]
    assert outcomes["ok-1"].outcome is outcomes["ok-2"].outcome is UsageOutcome.SENT
    assert metrics.values["UsageParked"] == 1


def test_alone_a_bad_record_makes_zero_stripe_calls(parts) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, _, _ = parts
    reporter(parts).report([record(usage("old", occurred_at=NOW - 36 * DAY)), record("{")])
    assert transport.requests == []


def test_34_days_old_is_sent(parts) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, _, _ = parts
    outcomes = reporter(parts).report([record(usage("d34", occurred_at=NOW - 34 * DAY - 23 * 3600), "d34")])
    assert outcomes["d34"].outcome is UsageOutcome.SENT
    assert transport.sent[0].timestamp == NOW - 34 * DAY - 23 * 3600


def test_the_same_record_twice_in_a_batch_is_sent_once_and_both_are_done(parts) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, _, _ = parts
    outcomes = reporter(parts).report([record(usage("dup"), "m1"), record(usage("dup"), "m2")])
    assert len(transport.sent) == 1
    assert outcomes["m1"].outcome is outcomes["m2"].outcome is UsageOutcome.SENT


def test_a_record_already_sent_is_a_duplicate_without_a_stripe_call(parts) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, _, metrics = parts
    rep = reporter(parts)
    rep.report([record(usage("once"), "m1")])
    # When the producer re-sends it as a new SQS message (even days later)
    outcomes = rep.report([record(usage("once"), "m2")])
    # Then it is done as a duplicate and Stripe saw it once
    assert outcomes["m2"].outcome is UsageOutcome.DUPLICATE
    assert len(transport.sent) == 1
    assert metrics.values["UsageDuplicate"] == 1


def test_same_id_different_content_is_a_conflict_parked_and_never_sent(parts) -> None:  # type: ignore[no-untyped-def]
    _, transport, _, parking, metrics = parts
    rep = reporter(parts)
    rep.report([record(usage("c1", value=5), "m1")])
    # When a record with the same id but a different value arrives, alone and inside a batch
    later = rep.report([record(usage("c1", value=9), "m2")])
    same_batch = rep.report([record(usage("c2", value=1), "m3"), record(usage("c2", value=2), "m4")])
    # Then the later one is a conflict, parked, and Stripe only ever saw the first of each
    assert later["m2"].outcome is UsageOutcome.CONFLICT
    assert same_batch["m4"].outcome is UsageOutcome.CONFLICT
    assert [(e.value) for e in transport.sent] == [5, 1]
    assert {p.reason for p in parking.parked} == {"conflict"}
    assert metrics.values["UsageConflict"] == 2
    assert metrics.values["UsageParked"] == 2


@pytest.mark.parametrize("reason", ["rate_limited", "stripe_unavailable"])
def test_429_and_5xx_become_batch_item_failures_and_stay_claimable(parts, reason) -> None:  # type: ignore[no-untyped-def]
    _ledger, transport, _, _, metrics = parts
    transport.answers["r1"] = SendResult(SendStatus.RETRY, reason)
    rep = reporter(parts)
    outcomes = rep.report([record(usage("r1"), "m1"), record(usage("r2"), "m2")])
    assert outcomes["m1"].retry
    assert not outcomes["m2"].retry
    assert metrics.values["UsageRetried"] == 1
    # When SQS redelivers it and Stripe accepts / Then it is sent
    del transport.answers["r1"]
    assert rep.report([record(usage("r1"), "m1")])["m1"].outcome is UsageOutcome.SENT


def test_stripe_duplicate_identifier_is_done(parts) -> None:  # type: ignore[no-untyped-def]
    ledger, transport, _, _, _ = parts
    transport.answers["d"] = SendResult(SendStatus.DUPLICATE, "duplicate_meter_event")
    outcomes = reporter(parts).report([record(usage("d"), "m1")])
    assert outcomes["m1"].outcome is UsageOutcome.DUPLICATE
    assert ledger.items["d"]["status"] == "SENT"


def test_stripe_rejection_parks_the_record(parts) -> None:  # type: ignore[no-untyped-def]
    ledger, transport, _, parking, _ = parts
    transport.answers["x"] = SendResult(SendStatus.REJECTED, "meter_event_customer_not_found")
    outcomes = reporter(parts).report([record(usage("x"), "m1")])
    assert outcomes["m1"].outcome is UsageOutcome.PARKED
    assert parking.parked[0].reason == "meter_event_customer_not_found"
    assert ledger.items["x"]["status"] == "PARKED"


def test_a_storage_failure_retries_only_the_affected_record(parts) -> None:  # type: ignore[no-untyped-def]
    ledger, _transport, directory, _, _ = parts
    ledger.fail_claims_for.add("l1")
    directory.failing.add("user-2")
    records = [record(usage("l1"), "m1"), record(usage("u2", user_id="user-2"), "m2"), record(usage("ok"), "m3")]
    outcomes = reporter(parts).report(records)
    assert outcomes["m1"].reason == "ledger_unavailable"
    assert outcomes["m1"].retry
    assert outcomes["m2"].reason == "customer_lookup_unavailable"
    assert outcomes["m2"].retry
    assert outcomes["m3"].outcome is UsageOutcome.SENT


def test_oldest_message_age_is_measured(parts) -> None:  # type: ignore[no-untyped-def]
    from tollgate.services.usage_reporter import InboundRecord

    _, _, _, _, metrics = parts
    records = [InboundRecord("m1", json.dumps(usage("a")), sent_at_ms=(NOW - 90) * 1000)]
    reporter(parts).report(records)
    assert metrics.values["UsageOldestMessageAgeSeconds"] == 90


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("hours_later", [1, 21], ids=["inside-window", "beyond-window"])
def test_stripe_accepted_but_the_ledger_write_failed_is_never_counted_twice(parts, hours_later) -> None:  # type: ignore[no-untyped-def]
    ledger, transport, directory, parking, metrics = parts
    clock = Clock()
    ledger.clock = clock
    rep = UsageReporter(
        ledger=ledger, transport=transport, directory=directory, parking=parking, metrics=metrics, clock=clock
    )
    # Given Stripe accepted a record but the ledger write after it failed: the record is retried, still PENDING
    ledger.fail_settles = True
    first = rep.report([record(usage("gap", occurred_at=NOW - 60), "m1")])
    assert first["m1"].retry
    assert first["m1"].reason == "ledger_unavailable"
    ledger.fail_settles = False
    # When SQS redelivers it hours later
    clock.now += hours_later * 3600
    again = rep.report([record(usage("gap", occurred_at=NOW - 60), "m1")])
    if hours_later < 20:
        # Then inside the resend window it is resent with the same identifier (Stripe deduplicates it)
        assert again["m1"].outcome is UsageOutcome.SENT
        assert len({e.identifier for e in transport.sent}) == 1
        assert len(transport.sent) == 2
    else:
        # Then beyond it, Stripe would no longer deduplicate: parked for reconciliation, never resent, counted
        assert again["m1"].outcome is UsageOutcome.PARKED
        assert again["m1"].reason == "needs_reconciliation"
        assert len(transport.sent) == 1
        assert parking.parked[-1].reason == "needs_reconciliation"
        assert metrics.values["UsageNeedsReconciliation"] == 1
        assert metrics.values["UsageParked"] == 1


class UnreadableKeyTransport(FakeTransport):
    """Stripe cannot even be called: the composition root failed to read the API key from Secrets Manager."""

    def send(self, events):  # type: ignore[no-untyped-def]
        self.requests.append(list(events))
        raise ConfigurationError("the Stripe secret could not be read")


def test_a_transport_that_cannot_reach_stripe_retries_the_sendable_and_still_parks_the_bad(parts) -> None:  # type: ignore[no-untyped-def]
    # Given Stripe unreachable for the whole batch (the key cannot be read) and a batch with a malformed sibling
    ledger, _, directory, parking, metrics = parts
    parts = (ledger, UnreadableKeyTransport(), directory, parking, metrics)
    # When the batch is reported
    outcomes = reporter(parts).report([record(usage("ok"), "m1"), record("{not json", "m2")])
    # Then the valid record is a batch-item failure (still claimable), and the malformed one is parked now, with
    # its reason, instead of failing the whole invocation and reaching the DLQ later without one
    assert outcomes["m1"].retry
    assert outcomes["m2"].outcome is UsageOutcome.PARKED
    assert [p.reason for p in parking.parked] == ["invalid_json"]
    assert ledger.items["ok"]["status"] == "PENDING"
    assert metrics.values["UsageRetried"] == 1
