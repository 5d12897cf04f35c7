"""Usage drift: usage the reporter sent (moto ledger) against what the Stripe emulator's meters count, per
customer, meter and UTC day. A meter total changed behind the product's back is reported for exactly that cell,
announced once on the table's stream, and the repair brings the totals equal. Controls: with nothing changed the
check finds nothing, and without the check nothing in the product notices the change."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.webhooks.harness import RecordingBus
from tests.support.streams import publisher_poller
from tollgate.adapters.dynamodb.drift_findings import DynamoDriftFindings
from tollgate.adapters.dynamodb.usage_ledger import DynamoUsageTotals
from tollgate.adapters.stripe_api.meter_totals import SdkMeterTotals
from tollgate.domain.usage_drift import DAY, UsageCell, utc_day
from tollgate.services.usage_drift import UsageDriftCheck

from .conftest import UsageStack
from .test_reporter_on_emulator import body

pytestmark = pytest.mark.slow

METER = "api_tokens"


@dataclass
class RecordingMetrics:
    values: list[tuple[str, float]] = field(default_factory=list)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values.append((name, value))


@dataclass
class DriftWorld:
    stack: UsageStack
    customers: dict[str, str]
    yesterday: int
    before: int  # the day before yesterday
    metrics: RecordingMetrics = field(default_factory=RecordingMetrics)

    def check(self) -> UsageDriftCheck:
        return UsageDriftCheck(
            totals=DynamoUsageTotals(self.stack.dynamodb, self.stack.table),
            meters=SdkMeterTotals(lambda: self.stack.client),
            findings=DynamoDriftFindings(self.stack.dynamodb, self.stack.table),
            transport=self.stack.v1_transport,
            metrics=self.metrics,
            clock=time.time,
        )

    def stripe_day_total(self, user: str, day: int) -> int:
        return sum(int(e["value"]) for e in self.events_of(user, day))

    def events_of(self, user: str, day: int) -> list[dict[str, Any]]:
        customer = self.customers[user]
        return [
            e
            for e in self.stack.emu.billing.meter_events
            if e["customer"] == customer and day <= e["timestamp"] < day + DAY
        ]


@pytest.fixture
def world(stack: UsageStack) -> DriftWorld:
    """Two customers' usage on the two complete days before today, sent by the real reporter."""
    today = utc_day(time.time())
    yesterday, before = today - DAY, today - 2 * DAY
    customers = {user: stack.customer(user) for user in ("user-1", "user-2")}
    bodies = (
        [body(f"u1-y-{i}", "user-1", 5, yesterday + 3600 + i) for i in range(4)]
        + [body(f"u1-b-{i}", "user-1", 2, before + 7200 + i) for i in range(3)]
        + [body(f"u2-y-{i}", "user-2", 7, yesterday + 60 + i) for i in range(2)]
    )
    stack.send_bodies(bodies)
    stack.poller(stack.reporter()).drain()
    return DriftWorld(stack, customers, yesterday, before)


def cancel_behind_the_back(world: DriftWorld, user: str, day: int) -> int:
    """Someone cancels one of the customer's meter events in Stripe (a meter event adjustment): returns its value."""
    event = world.events_of(user, day)[0]
    world.stack.client.v1.billing.meter_event_adjustments.create(
        {"event_name": METER, "type": "cancel", "cancel": {"identifier": event["identifier"]}}
    )
    return int(event["value"])


def test_a_meter_total_changed_behind_the_products_back_is_reported_for_exactly_that_cell(world: DriftWorld) -> None:
    # Given Stripe lost one of user-1's events of yesterday
    lost = cancel_behind_the_back(world, "user-1", world.yesterday)
    bus = RecordingBus()
    stream = publisher_poller(world.stack.table, bus)
    stream.skip_existing()
    # When the drift check runs over both days
    report = world.check().check([world.yesterday, world.before])
    # Then exactly that customer, meter and day drifts, by the lost value
    assert [(d.cell, d.sent, d.counted) for d in report.drifts] == [
        (UsageCell(world.yesterday, world.customers["user-1"], METER), 20, 20 - lost)
    ]
    assert report.cells_checked == 3
    assert ("UsageDrift", 1) in world.metrics.values
    # And the finding is published once by the table's stream
    stream.poll()
    drift_events = [e for e in bus.events if e.name == "usage.drift_detected"]
    assert [
        (e.customer_id, e.data["day"], e.data["sent"], e.data["counted"], e.data["repair"]) for e in drift_events
    ] == [(world.customers["user-1"], world.yesterday, 20, 20 - lost, "resend")]
    # And the next day's check of the same finding announces nothing new
    again = world.check().check([world.yesterday, world.before])
    assert len(again.drifts) == 1
    assert again.announced == 0
    stream.poll()
    assert len([e for e in bus.events if e.name == "usage.drift_detected"]) == 1


def test_the_repair_brings_the_totals_equal_once(world: DriftWorld) -> None:
    # Given a drifting cell
    cancel_behind_the_back(world, "user-1", world.yesterday)
    check = world.check()
    # When it is checked with repair, twice
    first = check.check([world.yesterday], repair=True)
    second = check.check([world.yesterday], repair=True)
    # Then the first run sent the shortfall, and Stripe's total equals what was sent
    assert first.repaired == {UsageCell(world.yesterday, world.customers["user-1"], METER): 5}
    assert world.stripe_day_total("user-1", world.yesterday) == 20
    # And the second found nothing left to repair
    assert second.drifts == []
    assert second.repaired == {}
    repairs = [e for e in world.events_of("user-1", world.yesterday) if e["identifier"].startswith("tgfix_")]
    assert len(repairs) == 1


def test_a_repair_run_twice_before_stripe_counts_sends_the_same_event(world: DriftWorld) -> None:
    # Given a repair whose event Stripe has not counted yet when the repair runs again (a summary lags)
    cancel_behind_the_back(world, "user-1", world.yesterday)
    check = world.check()
    drift = check.check([world.yesterday]).drifts[0]
    transport = world.stack.v1_transport()
    from tollgate.domain.usage_drift import repair_events
    from tollgate.ports.stripe import MeterEvent, SendStatus

    events = [
        MeterEvent(r.identifier, METER, drift.cell.customer_id, r.value, r.timestamp)
        for r in repair_events(drift, time.time())
    ]
    # When the same repair is sent twice
    first, second = transport.send(events), transport.send(events)
    # Then Stripe counts it once
    assert {r.status for r in first.values()} == {SendStatus.ACCEPTED}
    assert {r.status for r in second.values()} == {SendStatus.DUPLICATE}
    assert world.stripe_day_total("user-1", world.yesterday) == 20


def test_usage_stripe_counted_that_was_never_sent_is_reported_for_a_credit_not_repaired(world: DriftWorld) -> None:
    # Given something other than the product reported usage for user-2 to the same meter
    world.stack.client.v1.billing.meter_events.create(
        {
            "event_name": METER,
            "identifier": "elsewhere-1",
            "payload": {"stripe_customer_id": world.customers["user-2"], "value": "3"},
            "timestamp": world.yesterday + 500,
        }
    )
    # When the check runs with repair
    report = world.check().check([world.yesterday], repair=True)
    # Then the over-count is reported with the manual path, and nothing was sent to take it away
    assert [(d.cell.customer_id, d.missing) for d in report.drifts] == [(world.customers["user-2"], -3)]
    assert report.repaired == {}
    assert report.unrepaired
    assert "credit" in report.unrepaired[0]
    assert world.stripe_day_total("user-2", world.yesterday) == 17


def test_control_with_nothing_changed_the_check_finds_nothing(world: DriftWorld) -> None:
    report = world.check().check([world.yesterday, world.before])
    assert report.cells_checked == 3
    assert report.drifts == []
    assert ("UsageDrift", 0) in world.metrics.values


def test_control_without_the_check_nothing_notices_the_lost_usage(world: DriftWorld) -> None:
    # Given Stripe lost an event the ledger recorded as sent
    cancel_behind_the_back(world, "user-1", world.yesterday)
    # Then the reporter's own records still say everything was billed: nothing parked, nothing to retry
    assert world.stack.dlq_messages() == []
    ledger = world.stack.dynamodb.scan(TableName=world.stack.table)["Items"]
    statuses = {i["status"]["S"] for i in ledger if i["pk"]["S"].startswith("USAGE#")}
    assert statuses == {"SENT"}
    assert not [i for i in ledger if i["pk"]["S"].startswith("DRIFT#")]
    # While Stripe bills less than was sent
    assert world.stripe_day_total("user-1", world.yesterday) < 20


def test_days_outside_stripes_window_or_not_complete_are_refused(world: DriftWorld) -> None:
    from tollgate.errors import InvalidRequest

    check = world.check()
    today = utc_day(time.time())
    for day in (today, today - 36 * DAY, world.yesterday + 5):
        with pytest.raises(InvalidRequest):
            check.check([day])


@pytest.fixture
def deployed(world: DriftWorld, monkeypatch: pytest.MonkeyPatch, fresh_container: Any) -> Any:
    """The composition root as the function and the command build it: the key from Secrets Manager, the emulator."""
    import json

    import boto3

    from .conftest import TEST_KEY

    arn = boto3.client("secretsmanager").create_secret(
        Name="tollgate/stripe-drift", SecretString=json.dumps({"api_key": TEST_KEY})
    )["ARN"]
    monkeypatch.setenv("STRIPE_SECRET_ARN", arn)
    monkeypatch.setenv("STRIPE_API_BASE", world.stack.emu.url)
    monkeypatch.setenv("USAGE_DRIFT_DAYS_BACK", "2")
    fresh_container.dynamodb = world.stack.dynamodb
    return fresh_container


def test_the_command_reports_then_repairs_and_the_scheduled_function_finds_nothing_left(
    world: DriftWorld, deployed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from datetime import UTC, datetime

    from functions.usage_drift import app
    from tests.support.events import FakeLambdaContext
    from tollgate.commands import usage_drift

    # Given Stripe lost one of user-1's events of yesterday
    cancel_behind_the_back(world, "user-1", world.yesterday)
    day = datetime.fromtimestamp(world.yesterday, UTC).date().isoformat()
    # When ops run the command for that day: it reports the drift and exits non-zero
    assert usage_drift.main(["--day", day]) == 1
    reported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reported["drifts"] == [
        {"customer_id": world.customers["user-1"], "event_name": METER, "day": day, "sent": 20, "counted": 15}
    ]
    # And with --repair: repaired, exit 0
    assert usage_drift.main(["--day", day, "--repair"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["repaired"] == 1
    # Then the scheduled function over the last two days finds nothing left
    answer = app.handler({"source": "aws.scheduler"}, FakeLambdaContext())
    assert answer == {"days": [world.before, world.yesterday], "cells": 3, "drifts": 0}


def test_the_command_refuses_a_malformed_day() -> None:
    from tollgate.commands import usage_drift

    with pytest.raises(SystemExit) as exited:
        usage_drift.main(["--day", "yesterday"])
    assert exited.value.code == 2
