"""The usage reporter's warm path and cold start.

1. Meter events per Stripe request at batch size 100: the real reporter (v2 meter event streams) against the
   in-process Stripe emulator, counting every request in the emulator's log (the session creation included).
   Control: the v1 transport, one request per event.
2. Records/s of one reporter instance (the real handler in functions/usage/app.py, Powertools batch processing
   included) with the emulator answering after 25 ms, as a ratio to the limit 100 / round-trip, where the
   round-trip is one 100-event stream request measured in the same run. Ledger and customer directory are in
   memory here (their AWS cost is not the emulator's). Rows with 4 ms per ledger call (each claim and each settle
   slice: a typical DynamoDB write round-trip) show the ledger phase with the reporter's concurrent calls (the
   default 16, and 100 = one wave per batch) against the one-at-a-time control. The simulated call sleeps (no
   botocore CPU): on this machine a real put_item also costs ~1 ms of CPU under the GIL, which threads do not
   overlap. Control: the v1 transport.
3. The usage function's init as a ratio to F (``bench/coldstart_bench.py``'s method, needs ``make build``).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import BenchOptions

TITLE = "Usage reporter: meter events per Stripe request, records/s vs 100 / round-trip, init ratio to F"

BATCH = 100
LATENCY_MS = 25
STRIPE_PATHS = ("/v2/billing/meter_event_session", "/v2/billing/meter_event_stream", "/v1/billing/meter_events")


def _environment() -> None:
    layer = str(Path(__file__).resolve().parents[1] / "layers" / "common")
    if layer not in sys.path:
        sys.path.insert(0, layer)  # the Lambda layer's package, as the runtime puts it on the path
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_NAMESPACE": "Tollgate",
            "POWERTOOLS_SERVICE_NAME": "tollgate",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines on stdout would drown the tables
        }
    )


class _Bench:
    def __init__(self, emu: Any, client: Any, customers: list[str]) -> None:
        self.emu = emu
        self.client = client
        self.customers = customers
        self.serial = 0

    def records(self, count: int) -> list[dict[str, Any]]:
        from tests.support.events import sqs_event

        now = int(time.time()) - 30
        bodies = []
        for _ in range(count):
            self.serial += 1
            bodies.append(
                json.dumps(
                    {
                        "schema_version": 1,
                        "usage_id": f"bench-{self.serial:07d}",
                        "event_name": "api_tokens",
                        "stripe_customer_id": self.customers[self.serial % len(self.customers)],
                        "value": self.serial % 50 + 1,
                        "occurred_at": now,
                    }
                )
            )
        return list(sqs_event(bodies)["Records"])

    def handler(
        self, transport: str, ledger_delay_s: float = 0.0, concurrency: int = 16
    ) -> Callable[[list[dict[str, Any]]], Any]:
        """The real handler with a composition root holding a reporter on in-memory ledger/directory/parking."""
        from functions.usage import app
        from tests.support.events import FakeLambdaContext
        from tests.unit.usage.fakes import FakeDirectory, FakeParking, InMemoryLedger
        from tollgate import bootstrap
        from tollgate.adapters.stripe_api.meter_transport import StreamTransport, V1Transport
        from tollgate.config import Settings
        from tollgate.observability import metrics
        from tollgate.services.usage_reporter import UsageReporter

        class SlowLedger(InMemoryLedger):
            """Every call is a DynamoDB round-trip: a conditional put per claim, a BatchWriteItem per settle slice."""

            def claim(self, entry: Any) -> Any:
                time.sleep(ledger_delay_s)
                return super().claim(entry)

            def settle(self, outcomes: Any) -> Any:
                time.sleep(ledger_delay_s)
                return super().settle(outcomes)

        reporter = UsageReporter(
            ledger=SlowLedger(clock=time.time) if ledger_delay_s else InMemoryLedger(clock=time.time),
            transport=StreamTransport(lambda: self.client)
            if transport == "stream"
            else V1Transport(lambda: self.client),
            directory=FakeDirectory(),
            parking=FakeParking(),
            metrics=metrics,
            known_meters=frozenset({"api_tokens"}),
            ledger_concurrency=concurrency,
        )
        container = bootstrap.Container(
            Settings(table_name="tollgate-bench", stripe_secret_arn="arn:unused", usage_dlq_url="https://sqs/dlq")
        )
        container.__dict__["usage_reporter"] = reporter
        bootstrap.reset_container(container)

        def invoke(records: list[dict[str, Any]]) -> Any:
            answer = app.handler({"Records": records}, FakeLambdaContext(timeout_seconds=60))
            assert answer == {"batchItemFailures": []}, answer
            return answer

        return invoke

    def stripe_requests(self) -> int:
        return sum(1 for r in self.emu.request_log if r["path"] in STRIPE_PATHS)

    def round_trip_s(self, rounds: int) -> float:
        """One 100-event stream request, the unit the limit 100 / round-trip is made of."""
        token = self.client.v2.billing.meter_event_session.create().authentication_token
        timings = []
        for _ in range(rounds):
            events: Any = [
                {
                    "event_name": "api_tokens",
                    "identifier": "rtt-" + secrets.token_hex(8),
                    "payload": {"stripe_customer_id": self.customers[0], "value": "1"},
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
                for _ in range(BATCH)
            ]
            started = time.perf_counter()
            self.client.v2.billing.meter_event_stream.create({"events": events}, {"api_key": token})
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    def batch_seconds(self, invoke: Callable[[list[dict[str, Any]]], Any], rounds: int) -> float:
        invoke(self.records(BATCH))  # warm: session token, imports
        timings = []
        for _ in range(rounds):
            records = self.records(BATCH)
            started = time.perf_counter()
            invoke(records)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)


def _warm_path(options: BenchOptions) -> str:
    _environment()
    import stripe

    from devstack.stripe_emulator import StripeEmulator
    from tollgate import bootstrap

    key = "sk" + "_test_" + secrets.token_hex(12)
    emu = StripeEmulator(api_keys=(key,))
    emu.start()
    try:
        client = stripe.StripeClient(
            key,
            base_addresses={"api": emu.url, "meter_events": emu.url},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=10),
        )
        customers = [client.v1.customers.create({"metadata": {"bench": "usage"}}).id for _ in range(5)]
        bench = _Bench(emu, client, customers)

        # 1. Meter events per Stripe request
        per_request = []
        for transport, batches in (("stream", 20), ("v1", 1)):
            invoke = bench.handler(transport)
            before = bench.stripe_requests()
            for _ in range(batches):
                invoke(bench.records(BATCH))
            requests_made = bench.stripe_requests() - before
            per_request.append((transport, batches * BATCH, requests_made))

        # 2. Records/s at 25 ms per Stripe answer, against 100 / round-trip
        emu.faults.latency_ms = LATENCY_MS
        rounds = max(3, options.rounds)
        rtt = bench.round_trip_s(rounds)
        throughput = []
        for label, transport, delay, concurrency, n in (
            ("stream, ledger in memory", "stream", 0.0, 16, rounds),
            ("stream, ledger +4 ms per call, 16 concurrent (default)", "stream", 0.004, 16, rounds),
            ("stream, ledger +4 ms per call, 100 concurrent (one wave)", "stream", 0.004, 100, rounds),
            ("control: ledger +4 ms per call, one at a time", "stream", 0.004, 1, max(3, rounds // 3)),
            ("control: v1 transport", "v1", 0.0, 16, 1),
        ):
            seconds = bench.batch_seconds(bench.handler(transport, delay, concurrency), n)
            throughput.append((label, BATCH / seconds, rtt / seconds))
        emu.faults.latency_ms = 0
    finally:
        emu.stop()
        bootstrap.reset_container(None)

    lines = [
        "| transport (batch size 100) | records | Stripe requests (incl. session) | meter events per request |",
        "|---|---:|---:|---:|",
    ]
    for transport, records, made in per_request:
        label = "v2 meter event stream" if transport == "stream" else "control: v1 meter events"
        lines.append(f"| {label} | {records} | {made} | {records / made:.1f} |")
    lines += [
        "",
        f"Round-trip of one {BATCH}-event stream request with {LATENCY_MS} ms emulator latency: "
        f"{rtt * 1000:.1f} ms (median of {rounds}); limit 100 / round-trip = {BATCH / rtt:.0f} records/s.",
        "",
        "| reporter (real handler, batch of 100) | records/s (median batch) | ratio to 100 / round-trip |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {rate:.0f} | {ratio:.2f} |" for label, rate, ratio in throughput]
    return "\n".join(lines)


def _init_ratio(options: BenchOptions) -> str:
    from bench import coldstart_bench

    if not (coldstart_bench.BUILD / coldstart_bench.LAYER / "python").is_dir():
        return "Init ratio: no .aws-sam/build - run `make build` (or `make bench`)."
    return coldstart_bench.run(replace(options, only="UsageFunction"))


def run(options: BenchOptions) -> str:
    return _warm_path(options) + "\n\nUsage function init (fresh interpreter, ratio to F):\n\n" + _init_ratio(options)
