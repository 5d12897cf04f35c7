"""The storm: the emulator's lifecycle events for many subscriptions, plus 20 % duplicates, shuffled, delivered by
8 workers through the webhook's API Gateway entry into DynamoDB: the table equals the emulator's final state.

Size: the issue's full 10,000 events over 500 subscriptions, through the webhook and (issue 12) through the
EventBridge path alone (together about 8 minutes of a core on moto in-process; `make test` runs pytest with two
xdist workers and `--dist loadfile`, so this file has a core of its own while the rest of the suite runs on the
other). The controls and the both-paths storm run on samples: enough to be decisive, cheap enough to run too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.stripe_emulator import StripeEmulator
from tests.integration.webhooks.harness import Harness
from tests.integration.webhooks.storm import (
    STORM_KEY,
    ArrivalOrderRepository,
    deliver_storm,
    drive_lifecycles,
    emulator_truth,
    storm_harness,
    table_mismatches,
    via_eventbridge,
    via_webhook,
)
from tests.support.events import RECORDED_PARTNER_SOURCE
from tests.support.template import table_definition
from tollgate.services.stripe_event_bridge import StripeEventBridge

pytestmark = pytest.mark.slow

STORM_SUBSCRIPTIONS = 500
STORM_EVENTS = 10_000
CONTROL_SUBSCRIPTIONS = 50


@pytest.fixture(scope="module")
def lifecycle() -> Iterator[tuple[StripeEmulator, list[dict[str, Any]]]]:
    emu = StripeEmulator(api_keys=(STORM_KEY,))  # in-process only: the storm talks to its request pipeline, no socket
    events = drive_lifecycles(emu, STORM_SUBSCRIPTIONS, STORM_EVENTS)
    yield emu, events
    emu.stop()


@pytest.fixture(scope="module")
def truth(lifecycle: tuple[StripeEmulator, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The emulator's final subscriptions, read once for the module's tests (the storms only read the emulator)."""
    emu, _ = lifecycle
    return emulator_truth(emu)


def test_storm_of_shuffled_duplicated_events_converges_to_the_emulators_final_state(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]], truth: dict[str, dict[str, Any]]
) -> None:
    # Given every handled event the emulator emitted while driving the subscriptions through their lifecycles
    emu, events = lifecycle
    assert len(events) >= STORM_EVENTS
    assert len({e["id"] for e in events}) == len(events)
    h = storm_harness(boto3.client("dynamodb"), billing_table, emu)
    # When they arrive shuffled, with 20 % duplicates, from 8 concurrent workers
    result = deliver_storm(h, events, workers=8, duplicate_share=0.2)
    # Then every delivery was acknowledged, every event once, with no state change or domain event twice
    assert result.non_2xx == 0, result.outcomes
    assert result.deliveries == len(events) + int(len(events) * 0.2)
    assert len(result.first_acks) == len(events)
    assert len(h.repository.applied) == len(set(h.repository.applied))
    # And the publisher, run on the table's stream, announced every payment, trial notice and upcoming invoice at
    # least once, always under the same id (docs/domain-events.md: consumers deduplicate on `id`); a redelivery of a
    # stale payment event may record it again, which must stay rare (publishing on every duplicate delivery, a 20 %
    # duplicate storm, would fail this bound)
    h.publish()
    published = [e.id for e in h.bus.events]
    announced = {e.stripe_event_id for e in h.bus.events}
    must_announce = {e["id"] for e in events if e["type"].startswith(("invoice.", "customer.subscription.trial"))}
    assert must_announce <= announced, sorted(must_announce - announced)[:5]
    assert len({e.id: e.name for e in h.bus.events}) == len(set(published))  # one name per id: ids are stable
    republished = len(published) - len(set(published))
    assert republished <= len(set(published)) // 1000, republished
    # And the table equals the emulator's final subscriptions
    assert table_mismatches(h, truth) == []


def sample_of(
    events: list[dict[str, Any]], truth: dict[str, dict[str, Any]], customers: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every event of the first `customers` customers (in id order), and their subscriptions' final state."""
    kept = set(sorted({t["customer_id"] for t in truth.values()})[:customers])
    sample = [e for e in events if e["data"]["object"].get("customer") in kept]
    return sample, {k: v for k, v in truth.items() if v["customer_id"] in kept}


def test_control_applying_snapshots_in_arrival_order_diverges_from_stripe(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]], truth: dict[str, dict[str, Any]]
) -> None:
    # Given the same events for a sample of the subscriptions, and a projection that writes every snapshot as it
    # arrives
    emu, events = lifecycle
    sample, sample_truth = sample_of(events, truth, CONTROL_SUBSCRIPTIONS)
    h = storm_harness(boto3.client("dynamodb"), billing_table, emu)
    h.service.writer.repository = ArrivalOrderRepository(h.repository)  # type: ignore[assignment]
    deliver_storm(h, sample, workers=1, duplicate_share=0.2)
    # Then the table no longer equals Stripe's state
    assert len(table_mismatches(h, sample_truth)) > 0


# ---- the same storm through the EventBridge ingress (issue 12) ---------------------------------------------------
# The EventBridge path alone at the full size: every one of the module's 10,000+ events (12,271
# deliveries, ~180 s of CPU here). Both paths at once on a 50-subscription sample (about 1,000 events, each on both
# plus 20 % duplicates): measured on 2026-12-03 (2 shared cores), this file took 238 s of CPU with the old samples,
# 557 s with the full EventBridge storm and both paths on 250 subscriptions (+5.3 min, over make test's budget);
# the full EventBridge storm alone already adds ~2.8 min. The full 10,000 on both paths (24,542 deliveries) runs in
# bench/webhook_storm_bench.py (STORM_PATHS=both). The two-ledger control stays small: a handful of events applied
# twice decides it.

#: The both-paths sample (StripeEventIngress=both): each event on the webhook AND EventBridge, plus 20 % duplicates.
BOTH_PATHS_SUBSCRIPTIONS = 50
#: The two-ledger control's sample (each event once per path, no duplicates).
TWO_LEDGERS_SUBSCRIPTIONS = 10


def bridge_of(h: Harness) -> StripeEventBridge:
    return StripeEventBridge(webhook=h.service, trusted_sources=frozenset({RECORDED_PARTNER_SOURCE}))


def test_storm_through_eventbridge_alone_converges_to_the_emulators_final_state(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]], truth: dict[str, dict[str, Any]]
) -> None:
    # Given every one of the module's 10,000+ lifecycle events, now inside Stripe's EventBridge envelope from the
    # partner source
    emu, events = lifecycle
    assert len(events) >= STORM_EVENTS
    h = storm_harness(boto3.client("dynamodb"), billing_table, emu)
    # When the Stripe events queue hands them to 8 concurrent consumers, shuffled, with 20 % duplicates
    result = deliver_storm(h, events, workers=8, duplicate_share=0.2, paths=[via_eventbridge(bridge_of(h))])
    # Then every message was acknowledged, every event once (none lost), no state change twice, none refused
    assert result.non_2xx == 0, result.outcomes
    assert result.deliveries == len(events) + int(len(events) * 0.2)
    assert len(result.first_acks) == len(events)
    assert result.outcomes["refused"] == 0
    assert len(h.repository.applied) == len(set(h.repository.applied))
    # And the table equals the emulator's final subscriptions (0 mismatches)
    assert table_mismatches(h, truth) == []


def test_storm_on_both_paths_applies_each_event_once_with_one_ledger(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]], truth: dict[str, dict[str, Any]]
) -> None:
    # Given StripeEventIngress=both: each event of a sample arrives signed on the webhook AND on
    # EventBridge, plus 20 % duplicates, shuffled, into the one table (one event ledger, one projection)
    emu, events = lifecycle
    sample, sample_truth = sample_of(events, truth, BOTH_PATHS_SUBSCRIPTIONS)
    assert len(sample) >= 500
    h = storm_harness(boto3.client("dynamodb"), billing_table, emu)
    paths = [via_webhook(h), via_eventbridge(bridge_of(h))]
    # When 8 workers deliver them
    result = deliver_storm(h, sample, workers=8, duplicate_share=0.2, paths=paths)
    # Then every delivery on either path was acknowledged, every event once, no state change applied twice
    assert result.non_2xx == 0, result.outcomes
    assert result.deliveries == 2 * len(sample) + int(2 * len(sample) * 0.2)
    assert len(result.first_acks) == len(sample)
    assert result.outcomes["refused"] == 0
    assert len(h.repository.applied) == len(set(h.repository.applied))
    assert table_mismatches(h, sample_truth) == []


def test_control_two_ledgers_apply_the_events_of_both_paths_twice(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]], truth: dict[str, dict[str, Any]]
) -> None:
    # Given the naive migration: the EventBridge path with a table (and ledger) of its own beside the webhook's
    emu, events = lifecycle
    sample, _ = sample_of(events, truth, TWO_LEDGERS_SUBSCRIPTIONS)
    client = boto3.client("dynamodb")
    client.create_table(TableName=billing_table + "-eventbridge", **table_definition())
    webhook_side = storm_harness(client, billing_table, emu)
    bridge_side = storm_harness(client, billing_table + "-eventbridge", emu)
    # When each event arrives on both paths
    deliver_storm(webhook_side, sample, workers=4, duplicate_share=0.0)
    deliver_storm(bridge_side, sample, workers=4, duplicate_share=0.0, paths=[via_eventbridge(bridge_of(bridge_side))])
    # Then state changes are applied twice (once per ledger): what the one ledger prevents
    twice = set(webhook_side.repository.applied) & set(bridge_side.repository.applied)
    assert len(twice) > 0
