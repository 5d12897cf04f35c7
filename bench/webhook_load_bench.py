"""The issue's full-size load runs of two webhook tests (`make test` runs them smaller with the same code):
64 identical deliveries at once x 200 rounds, and a crash between claim and commit for 5 % of 2,000 events."""

from __future__ import annotations

import os
import time

from bench.harness import BenchOptions
from bench.webhook_calls_bench import _env

TITLE = "Webhook load at full size: 200 x 64 identical concurrent deliveries; 5 % crashes over 2,000 events"
ROUNDS = int(os.environ.get("BURST_ROUNDS", "200"))
CRASH_EVENTS = int(os.environ.get("CRASH_EVENTS", "2000"))


def run(options: BenchOptions) -> str:  # noqa: ARG001 - counts, not timings
    _env()
    os.environ["TABLE_NAME"] = "tollgate-test"
    import boto3
    from moto import mock_aws

    from tests.integration.webhooks.harness import build_harness
    from tests.integration.webhooks.test_webhook_faults_and_bursts import run_burst, run_crash_scenario
    from tests.support.template import table_definition

    rows = []
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(TableName="tollgate-test", **table_definition())
        started = time.perf_counter()
        h = build_harness(client, "tollgate-test", wait_seconds=0.0)
        applied, early, acked, refused = run_burst(h, ROUNDS, 64)
        rows.append(("burst rounds x fanout", f"{ROUNDS} x 64"))
        rows.append(("state changes (expected = rounds)", f"{len(applied)} ({len(set(applied))} distinct)"))
        rows.append(("2xx before the first commit", f"{early}"))
        rows.append(("2xx / 409 answers", f"{acked} / {refused}"))
        rows.append(("burst seconds", f"{time.perf_counter() - started:.0f}"))
        client.delete_table(TableName="tollgate-test")
        client.create_table(TableName="tollgate-test", **table_definition())
        started = time.perf_counter()
        h = build_harness(client, "tollgate-test")
        lost, doubled, crashes = run_crash_scenario(h, CRASH_EVENTS, 20)
        rows.append(("crash run: events / crashed first attempts", f"{CRASH_EVENTS} / {crashes}"))
        rows.append(("lost / applied twice", f"{lost} / {doubled}"))
        rows.append(("crash seconds", f"{time.perf_counter() - started:.0f}"))
    return "\n".join(["| figure | value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in rows])
