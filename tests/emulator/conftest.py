"""Fixtures: one emulator per session (reset before each test), an SDK client, and a webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe
from stripe._http_client import HTTPClient

from devstack.stripe_emulator import StripeEmulator

TEST_KEY = "sk" + "_test_" + "emulator"


@pytest.fixture(scope="session")
def emulator() -> Iterator[StripeEmulator]:
    emu = StripeEmulator(api_keys=(TEST_KEY,), webhook_retry_base_seconds=0.05, checkout_wait_seconds=5.0)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch) -> StripeEmulator:
    """A clean emulator for each test; SDK retry sleeps compressed so fault tests stay fast."""
    emulator.reset()
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.02)
    return emulator


def make_client(url: str, retries: int = 0, timeout: float = 5.0, key: str = TEST_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": url, "meter_events": url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


@pytest.fixture
def client(emu: StripeEmulator) -> stripe.StripeClient:
    return make_client(emu.url)


@dataclass
class Receiver:
    """A local webhook receiver that answers 500 to the first `fail_first` attempts of each event."""

    fail_first: int = 0
    delay_s: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["status"] == 200]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.accepted()
            if len(got) >= count:
                return got
            time.sleep(0.01)
        return self.accepted()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            import json

            key = json.loads(body)["id"]
            with rec.lock:
                n = rec.attempts.get(key, 0) + 1
                rec.attempts[key] = n
                status = 500 if n <= rec.fail_first else 200
                rec.received.append(
                    {
                        "body": body,
                        "sig": self.headers.get("Stripe-Signature"),
                        "status": status,
                        "path": self.path,
                        "at": time.time(),
                    }
                )
            if rec.delay_s:
                time.sleep(rec.delay_s)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield rec
    server.shutdown()
    server.server_close()


@dataclass
class Hooks:
    """A snapshot webhook endpoint and a thin event destination, both subscribed to everything (`*`)."""

    client: stripe.StripeClient
    emu: StripeEmulator
    receiver: Receiver
    snapshot_secret: str
    thin_secret: str

    def snapshot_events(self) -> list[stripe.Event]:
        """Every snapshot event delivered so far, each verified against its signature by the SDK."""
        assert self.emu.events.wait_idle(10)
        return [
            stripe.Webhook.construct_event(r["body"].decode(), r["sig"], self.snapshot_secret)
            for r in self.receiver.accepted()
            if r["path"] == "/snap"
        ]

    def snapshot_types(self) -> list[str]:
        return [e.type for e in self.snapshot_events()]

    def thin_notes(self) -> list[Any]:
        """Every thin event delivered so far, parsed and verified by `StripeClient.parse_event_notification`."""
        assert self.emu.events.wait_idle(10)
        return [
            self.client.parse_event_notification(r["body"], r["sig"], self.thin_secret)
            for r in self.receiver.accepted()
            if r["path"] == "/thin"
        ]


@pytest.fixture
def hooks(emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver) -> Hooks:
    we = client.v1.webhook_endpoints.create({"url": receiver.url + "/snap", "enabled_events": ["*"]})
    dest = client.v2.core.event_destinations.create(
        {
            "name": "thin-all",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": ["*"],
            "webhook_endpoint": {"url": receiver.url + "/thin"},
            "include": ["webhook_endpoint.signing_secret"],
        }
    )
    return Hooks(client, emu, receiver, str(we.secret), str(dest.webhook_endpoint.signing_secret))
