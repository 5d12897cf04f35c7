"""The storm: the emulator's lifecycle events for many subscriptions, plus 20 % duplicates, shuffled, delivered by
8 workers through the webhook's API Gateway entry into DynamoDB: the table equals the emulator's final state.

Size: the issue's full 10,000 events over 500 subscriptions (about 5 minutes on moto in-process; `make test` runs
pytest with two xdist workers and `--dist loadfile`, so this file has a core of its own while the rest of the suite
runs on the other). The control runs on a 50-subscription sample: enough to be decisive, cheap enough to run too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.stripe_emulator import StripeEmulator
from tests.integration.webhooks.storm import (
    STORM_KEY,
    ArrivalOrderRepository,
    deliver_storm,
    drive_lifecycles,
    emulator_truth,
    storm_harness,
    table_mismatches,
)

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


def test_storm_of_shuffled_duplicated_events_converges_to_the_emulators_final_state(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]]
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
    assert table_mismatches(h, emulator_truth(emu)) == []


def test_control_applying_snapshots_in_arrival_order_diverges_from_stripe(
    billing_table: str, lifecycle: tuple[StripeEmulator, list[dict[str, Any]]]
) -> None:
    # Given the same events for a sample of the subscriptions, and a projection that writes every snapshot as it
    # arrives
    emu, events = lifecycle
    truth = emulator_truth(emu)
    kept = set(sorted({t["customer_id"] for t in truth.values()})[:CONTROL_SUBSCRIPTIONS])
    sample = [e for e in events if (e["data"]["object"].get("customer") in kept)]
    h = storm_harness(boto3.client("dynamodb"), billing_table, emu)
    h.service.writer.repository = ArrivalOrderRepository(h.repository)  # type: ignore[assignment]
    deliver_storm(h, sample, workers=1, duplicate_share=0.2)
    # Then the table no longer equals Stripe's state
    mismatches = table_mismatches(h, {k: v for k, v in truth.items() if v["customer_id"] in kept})
    assert len(mismatches) > 0
