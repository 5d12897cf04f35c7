"""Provisioning on an empty emulator account (no seed) and moto's Secrets Manager, through the real composition
root: the same StripeClient, adapters and use case the provisioner function and ``make provision`` run."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from devstack.stripe_emulator import StripeEmulator
from tollgate.config import ProvisioningSettings

OWNER = "tollgate-test"
RETURN_URL = "https://app.example.test/billing"
CATALOG: dict[str, Any] = {
    "plans": [
        {
            "key": "starter",
            "name": "Starter",
            "description": "For one person",
            "trial_days": 14,
            "prices": [{"lookup_key": "starter_monthly", "unit_amount": 900, "currency": "usd", "interval": "month"}],
            "features": ["dashboard"],
        },
        {
            "key": "team",
            "name": "Team",
            "min_quantity": 1,
            "max_quantity": 50,
            "prices": [
                {"lookup_key": "team_monthly", "unit_amount": 2900, "currency": "usd", "interval": "month"},
                {"lookup_key": "team_yearly", "unit_amount": 29000, "currency": "usd", "interval": "year"},
                {"lookup_key": "api_tokens_metered", "unit_amount": 1, "interval": "month", "meter": "api_tokens"},
            ],
            "features": ["dashboard", "team_seats", "api_access"],
        },
        # Named by a v2 pricing plan: not provisioned (stripe-python 16.1.0 cannot create one), left alone.
        {"key": "usage-pro", "name": "Usage Pro", "pricing_plan": "bpp_test_usage_pro"},
    ],
    "features": [{"lookup_key": "team_seats", "name": "Team seats"}],
}


@dataclass
class Receiver:
    """Where the emulator delivers events: records each body and signature, answers 200."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for_type(self, event_type: str, timeout: float = 5.0) -> dict[str, Any] | None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for item in self.received:
                    if json.loads(item["body"]).get("type") == event_type:
                        return item
            time.sleep(0.02)
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.lock:
                rec.received.append({"body": body, "sig": self.headers.get("Stripe-Signature")})
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield rec
    server.shutdown()
    server.server_close()


#: The account's secret key: the emulator accepts only the keys it is configured with, like Stripe.
API_KEY = "sk" + "_test_" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def emulator() -> Iterator[StripeEmulator]:
    # An empty account: no seed at all.
    emu = StripeEmulator(seed_path=None, api_keys=(API_KEY,), webhook_retry_base_seconds=0.2)
    emu.start()
    yield emu
    emu.stop()


@dataclass
class World:
    emulator: StripeEmulator
    container: Any
    secret_arn: str
    api_key: str

    def writes(self) -> list[dict[str, Any]]:
        """Every request that could change the account (the request log's POSTs and DELETEs)."""
        return [r for r in self.emulator.request_log if r["method"] in ("POST", "DELETE") and r["kind"] in ("v1", "v2")]

    def secret(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(
            boto3.client("secretsmanager").get_secret_value(SecretId=self.secret_arn)["SecretString"]
        )
        return value

    def inputs(self, catalog: dict[str, Any] | None = None, webhook_url: str | None = None) -> ProvisioningSettings:
        return ProvisioningSettings.from_properties(
            {
                "Owner": OWNER,
                "PlanCatalog": json.dumps(catalog or CATALOG),
                "UsageMeterEventNames": "api_tokens",
                "WebhookUrl": webhook_url or "https://api.example.test/dev/webhooks/stripe",
                "PortalReturnUrl": RETURN_URL,
            }
        )

    def stripe(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        import requests

        response = requests.request(
            method,
            self.emulator.url + path,
            headers={"Authorization": f"Bearer {self.api_key}"},
            data=params if method != "GET" else None,
            params=params if method == "GET" else None,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def world(emulator: StripeEmulator, aws: None, monkeypatch: pytest.MonkeyPatch, fresh_container: Any) -> World:
    emulator.reset()
    api_key = API_KEY
    arn = boto3.client("secretsmanager").create_secret(
        Name="tollgate/stripe-" + secrets.token_hex(4), SecretString=json.dumps({"api_key": api_key})
    )["ARN"]
    for name, value in {
        "STRIPE_SECRET_ARN": arn,
        "STRIPE_API_BASE": emulator.url,
        "STRIPE_RESOURCE_OWNER": OWNER,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "SECRET_CACHE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    # One clock, as in the local stack: the planner reads the emulator's time (the rotation window runs on it).
    fresh_container.clock = emulator.clock.now
    return World(emulator, fresh_container, arn, api_key)
