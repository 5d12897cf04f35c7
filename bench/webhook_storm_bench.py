"""The full storm of issues 5 and 10: 10,000 distinct emulator events over 500 subscriptions, plus 20 % duplicates,
shuffled, 8 workers, through the webhook's API Gateway entry into moto DynamoDB (the test in `make test` runs the
same code at a smaller size: tests/integration/webhooks/test_webhook_storm.py). Issue 12: the same 10,000 events
through the EventBridge path alone and on both paths at once (one ledger), with the two-ledger control;
STORM_PATHS=webhook,eventbridge,both picks which run."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import BenchOptions

ROOT = Path(__file__).resolve().parent.parent
TITLE = (
    "Webhook storm: 10,000 emulator events / 500 subscriptions, +20% duplicates, 8 workers, moto"
    " (webhook, EventBridge, both)"
)

SUBSCRIPTIONS = int(os.environ.get("STORM_SUBSCRIPTIONS", "500"))
EVENTS = int(os.environ.get("STORM_EVENTS", "10000"))
#: Which ingress paths to storm (issue 12): the webhook, EventBridge alone, and both at once on one ledger.
PATHS = {p.strip() for p in os.environ.get("STORM_PATHS", "webhook,eventbridge,both").split(",") if p.strip()}


def run(options: BenchOptions) -> str:  # noqa: ARG001 - one run; the figures are counts, not timings
    for path in (str(ROOT), str(ROOT / "layers" / "common")):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Tollgate")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tollgate")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    # The services' EMF metric lines would bury the table on stdout (pytest captures them in make test)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    import boto3
    from moto import mock_aws

    from devstack.stripe_emulator import StripeEmulator
    from tests.integration.webhooks.storm import (
        STORM_KEY,
        ArrivalOrderRepository,
        CountingDynamoDB,
        deliver_storm,
        drive_lifecycles,
        emulator_truth,
        storm_harness,
        table_mismatches,
    )
    from tests.support.template import table_definition

    rows = []
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(TableName="storm", **table_definition())
        emu = StripeEmulator(api_keys=(STORM_KEY,))
        started = time.perf_counter()
        events = drive_lifecycles(emu, SUBSCRIPTIONS, EVENTS)
        generated = time.perf_counter() - started
        rows.append(("generation (emulator) seconds", f"{generated:.0f}"))
        if "webhook" in PATHS:
            counting = CountingDynamoDB(client)
            h = storm_harness(counting, "storm", emu)
            result = deliver_storm(h, events, workers=8, duplicate_share=0.2)
            # Only the webhook's calls: the mismatch check below reads the table through the same client.
            webhook_calls = sum(counting.calls.values())
            truth = emulator_truth(emu)
            mismatches = table_mismatches(h, truth)
            applied = h.repository.applied
            # The publisher on the table's stream (the PublisherFunction's mapping, played in-process)
            streamed = h.publish()
            published = [e.id for e in h.bus.events]
            must_announce = {
                e["id"] for e in events if e["type"].startswith(("invoice.", "customer.subscription.trial"))
            }
            missing = must_announce - {e.stripe_event_id for e in h.bus.events}
            rows.append(("distinct events (handled types)", f"{len(events):,}"))
            rows.append(("subscriptions", f"{len(truth):,}"))
            rows.append(("deliveries (events + 20 % duplicates)", f"{result.deliveries:,}"))
            rows.append(("non-2xx answers", f"{result.non_2xx}"))
            rows.append(("events acknowledged", f"{len(result.first_acks):,}"))
            rows.append(("state changes applied twice", f"{len(applied) - len(set(applied))}"))
            rows.append(("stream records given to the publisher", f"{streamed:,}"))
            rows.append(("domain events published (distinct ids)", f"{len(set(published)):,}"))
            rows.append(("ids published more than once (a consumer deduplicating on id sees each once)",
                         f"{len(published) - len(set(published))}"))  # fmt: skip
            rows.append(("payments, trial notices, upcoming invoices never announced", f"{len(missing)}"))
            rows.append(("table vs emulator mismatches", f"{len(mismatches)}"))
            rows.append(("first outcomes", ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items()))))
            rows.append(("DynamoDB calls per delivery (the webhook's)", f"{webhook_calls / result.deliveries:.2f}"))
            rows.append(
                (
                    "CONTROL: the previous design (in-item outbox + settle write), same storm at ffb7399",
                    "1.68 (incl. ~0.04 reads of the check)",
                )
            )
            rows.append(("webhook delivery seconds", f"{result.seconds:.0f}"))
            # CONTROL: the same events written in arrival order, one worker, no watermark
            client.create_table(TableName="control", **table_definition())
            control = storm_harness(client, "control", emu)
            control.service.writer.repository = ArrivalOrderRepository(control.repository)
            kept = set(sorted({t["customer_id"] for t in truth.values()})[:50])
            sample = [e for e in events if e["data"]["object"].get("customer") in kept]
            deliver_storm(control, sample, workers=1, duplicate_share=0.2)
            control_mismatches = table_mismatches(control, {k: v for k, v in truth.items() if v["customer_id"] in kept})
            rows.append(("CONTROL arrival-order mismatches (50 subscriptions)", f"{len(control_mismatches)}"))
        if PATHS & {"eventbridge", "both"}:
            rows.extend(eventbridge_rows(client, emu, events))
    lines = ["| figure | value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def eventbridge_rows(client: Any, emu: Any, events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The same storm through the Stripe events function's service (issue 12): Stripe's EventBridge envelope from
    the partner source, one SQS record per delivery; with `both`, every event also arrives signed on the webhook,
    one ledger for the two; CONTROL: two ledgers apply what arrives on both paths twice."""
    from tests.integration.webhooks.storm import (
        deliver_storm,
        emulator_truth,
        storm_harness,
        table_mismatches,
        via_eventbridge,
        via_webhook,
    )
    from tests.support.events import RECORDED_PARTNER_SOURCE
    from tests.support.template import table_definition
    from tollgate.services.stripe_event_bridge import StripeEventBridge

    def bridge(h: Any) -> StripeEventBridge:
        return StripeEventBridge(webhook=h.service, trusted_sources=frozenset({RECORDED_PARTNER_SOURCE}))

    truth = emulator_truth(emu)
    rows: list[tuple[str, str]] = []
    runs = [(name, paths) for name, paths in (("eventbridge", 1), ("both", 2)) if name in PATHS]
    for name, path_count in runs:
        client.create_table(TableName=f"storm-{name}", **table_definition())
        h = storm_harness(client, f"storm-{name}", emu)
        senders = [via_eventbridge(bridge(h))] if path_count == 1 else [via_webhook(h), via_eventbridge(bridge(h))]
        result = deliver_storm(h, events, workers=8, duplicate_share=0.2, paths=senders)
        applied = h.repository.applied
        rows.append((f"{name}: deliveries (every event on {path_count} path(s) + 20 % duplicates)",
                     f"{result.deliveries:,}"))  # fmt: skip
        rows.append((f"{name}: non-2xx / refused", f"{result.non_2xx} / {result.outcomes['refused']}"))
        rows.append((f"{name}: events acknowledged (of {len(events):,})", f"{len(result.first_acks):,}"))
        rows.append((f"{name}: state changes applied twice", f"{len(applied) - len(set(applied))}"))
        rows.append((f"{name}: table vs emulator mismatches", f"{len(table_mismatches(h, truth))}"))
        rows.append((f"{name}: delivery seconds", f"{result.seconds:.0f}"))
    if "both" in PATHS:
        # CONTROL: the naive migration, a table (and ledger) per path; each event once on each
        kept = set(sorted({t["customer_id"] for t in truth.values()})[:50])
        sample = [e for e in events if e["data"]["object"].get("customer") in kept]
        for table in ("two-ledgers-webhook", "two-ledgers-eventbridge"):
            client.create_table(TableName=table, **table_definition())
        webhook_side = storm_harness(client, "two-ledgers-webhook", emu)
        bridge_side = storm_harness(client, "two-ledgers-eventbridge", emu)
        deliver_storm(webhook_side, sample, workers=4, duplicate_share=0.0)
        deliver_storm(bridge_side, sample, workers=4, duplicate_share=0.0, paths=[via_eventbridge(bridge(bridge_side))])
        twice = set(webhook_side.repository.applied) & set(bridge_side.repository.applied)
        rows.append(("CONTROL two ledgers: state changes applied twice (50 subscriptions)", f"{len(twice):,}"))
    return rows
