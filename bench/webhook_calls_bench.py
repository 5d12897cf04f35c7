"""DynamoDB calls and write units per webhook event (10 % duplicates), one-write path versus always-leased, and
events/s of one instance with Stripe answering after 25 ms (the emulator's latency knob) on fetch-latest."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from bench.harness import BenchOptions

ROOT = Path(__file__).resolve().parent.parent
TITLE = "Webhook: DynamoDB calls and write units per event (10% duplicates), events/s per instance (Stripe +25 ms)"

SUBSCRIPTIONS = int(os.environ.get("CALLS_SUBSCRIPTIONS", "60"))
EVENTS = int(os.environ.get("CALLS_EVENTS", "1200"))
WRITES = ("put_item", "update_item", "delete_item")


def _env() -> None:
    for path in (str(ROOT), str(ROOT / "layers" / "common")):
        if path not in sys.path:
            sys.path.insert(0, path)
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "Tollgate",
        "POWERTOOLS_SERVICE_NAME": "tollgate",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(name, value)


def run(options: BenchOptions) -> str:  # noqa: ARG001 - counts, not timings, except the last column
    _env()
    import boto3
    from moto import mock_aws

    from devstack.stripe_emulator import StripeEmulator
    from tests.integration.webhooks.storm import (
        STORM_KEY,
        CountingDynamoDB,
        deliver_storm,
        drive_lifecycles,
        storm_harness,
    )
    from tests.support.dynamodb_size import item_size
    from tests.support.template import table_definition

    lines = [
        "| strategy | calls / delivery | writes / delivery | est. WCU / delivery | transact / delivery "
        "| reads / delivery | events/s, 1 instance, Stripe +25 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with mock_aws():
        emu = StripeEmulator(api_keys=(STORM_KEY,))
        events = drive_lifecycles(emu, SUBSCRIPTIONS, EVENTS)
        emu.faults.latency_ms = 25
        client = boto3.client("dynamodb")
        largest = 0
        for index, (label, one_write) in enumerate((("one-write path (default)", True), ("always leased", False))):
            table = f"calls{index}"
            client.create_table(TableName=table, **table_definition())
            counting = CountingDynamoDB(client)
            h = storm_harness(counting, table, emu)
            h.service.one_write_path = one_write
            result = deliver_storm(h, events, workers=1, duplicate_share=0.1)
            calls: Counter[str] = counting.calls
            n = result.deliveries
            writes = sum(calls[w] for w in WRITES)
            transact = calls["transact_write_items"]
            reads = calls["get_item"] + calls["query"]
            # Items stay under 1 KB (largest measured below): 1 WCU per write request, 2 per transactional item
            # (the customer link writes 2 items per transaction).
            wcu = writes + transact * 2 * 2
            lines.append(
                f"| {label} | {sum(calls.values()) / n:.2f} | {writes / n:.2f} | {wcu / n:.2f} | {transact / n:.3f} "
                f"| {reads / n:.2f} | {n / result.seconds:.0f} |"
            )
            for item in client.scan(TableName=table)["Items"]:
                largest = max(largest, item_size(item))
        lines.append("")
        lines.append(
            f"{len(events):,} distinct emulator events over {SUBSCRIPTIONS} subscriptions, +10 % duplicates, "
            "one worker (a Lambda instance handles one event at a time); "
            f"largest item {largest} bytes by DynamoDB's size rules (1 WCU per write while <= 1,024). "
            "events/s is bounded here by in-process moto (~5-11 ms per call on this machine), not by the design."
        )
    return "\n".join(lines)
