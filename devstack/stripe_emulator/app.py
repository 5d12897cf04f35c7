"""`StripeEmulator`: the emulator's lifecycle (start, stop, reset, seed) and the helpers tests use.

Every service and route is built by `wiring.py`; requests go through `pipeline.RequestPipeline`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import stripe

from .clock import Clock
from .domain.settings import Settings
from .events import EventBus
from .faults import Faults
from .idempotency import IdempotencyStore
from .inspection import BillingInspection
from .pipeline import RequestPipeline
from .request_log import RequestLog
from .routing import Response, Router
from .schedule import BusinessTime, Scheduler
from .seed import SeedLoader
from .server import EmulatorServer
from .store import Store
from .webhook_delivery import DeliveryFreedoms, WebhookSender
from .wiring import Kernel, billing_resources, build_engine, control_and_page_resources

DEFAULT_API_VERSION: str = stripe.api_version
DEFAULT_SEED = Path(__file__).resolve().parent.parent / "seed.json"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class StripeEmulator:
    """A stateful Stripe stand-in speaking the wire format of stripe-python 16.1.0.

    Use in-process (`emu.start()` returns the base URL) or standalone (`python -m devstack.stripe_emulator`).
    """

    def __init__(
        self,
        seed_path: str | Path | None = DEFAULT_SEED,
        *,
        webhook_retry_base_seconds: float = 60.0,
        webhook_max_attempts: int = 4,
        webhook_timeout_seconds: float = 10.0,
        checkout_wait_seconds: float = 10.0,
        delivery: DeliveryFreedoms | None = None,
        api_keys: tuple[str, ...] = (),
        latency_ms: int = 0,
        dunning_retries: int = 3,
        dunning_retry_interval_days: int = 3,
        meter_error_report_delay_seconds: float = 60.0,
        invoice_upcoming_days: int = 7,
        dunning_end_action: str = "unpaid",
        dunning_mark_uncollectible: bool = False,
        async_payment_delay_days: float = 4,
        synchronous_meter_errors: bool = False,
        public_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.seed_path = Path(seed_path) if seed_path else None
        self.api_version = api_version
        self.public_url = public_url or ""
        self.store = Store()
        self.clock = Clock()
        self.faults = Faults()
        self.faults.latency_ms = latency_ms
        self.idempotency = IdempotencyStore()
        self._log = RequestLog()
        self.request_log = self._log.entries
        time = BusinessTime(self.clock)
        sender = WebhookSender(
            self.store,
            webhook_retry_base_seconds,
            webhook_max_attempts,
            webhook_timeout_seconds,
            clock=self.clock.now,
            freedoms=delivery,
        )
        self.events = EventBus(self.store, time.now, api_version, sender)
        self.settings = Settings(
            dunning_retries=dunning_retries,
            dunning_retry_interval_days=dunning_retry_interval_days,
            meter_error_report_delay_seconds=meter_error_report_delay_seconds,
            invoice_upcoming_days=invoice_upcoming_days,
            dunning_end_action=dunning_end_action,
            dunning_mark_uncollectible=dunning_mark_uncollectible,
            async_payment_delay_days=async_payment_delay_days,
            synchronous_meter_errors=synchronous_meter_errors,
        )
        kernel = Kernel(self.store, self.clock, time, self.events, self.settings)
        engine = build_engine(kernel)
        self._engine = engine
        self.billing = BillingInspection(self.settings, engine.meters, engine.meter_errors)
        scheduler = Scheduler(self.store.lock, self.clock, time, engine.timeline.due)
        self.clock.on_advance(scheduler.tick)
        self.router = Router()
        for resource in billing_resources(kernel, engine, scheduler.tick):
            self.router.add_table(resource)
        for resource in control_and_page_resources(kernel, engine, self.faults, self._log, self.reset):
            self.router.add_table(resource)
        self._pipeline = RequestPipeline(
            self.router,
            self.store,
            self.clock,
            self.events,
            self.faults,
            self.idempotency,
            self._log,
            engine.meter_sessions,
            api_version=api_version,
            api_keys=set(api_keys),
            base_url=lambda: self.public_url,
            checkout_wait_seconds=checkout_wait_seconds,
        )
        self._seed = SeedLoader(
            self.store, engine.catalog, engine.meters, engine.entitlements, engine.portal_configurations
        )
        self._server: EmulatorServer | None = None
        self.load_seed()

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on 127.0.0.1 (never a public interface); returns the base URL."""
        if host not in LOOPBACK:
            raise ValueError("the emulator binds to loopback only")
        self._server = EmulatorServer(self, self.clock, host, port)
        self._server.start()
        url = f"http://{host}:{self._server.port}"
        if not self.public_url:
            self.public_url = url
        return url

    @property
    def url(self) -> str:
        return self.public_url

    def stop(self) -> None:
        self.events.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> StripeEmulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget everything (objects, events, keys, faults, log, clock offset) and re-seed."""
        self.events.reset()
        with self.store.lock:
            self.store.clear()
            self.idempotency.clear()
            self.faults.clear()
            self._log.clear()
            self.clock.reset()
            self.settings.reset()
            self._engine.meters.reset()
            self._engine.meter_sessions.reset()
            self._engine.meter_errors.reset()
            self.load_seed()

    def load_seed(self) -> None:
        seed: dict[str, Any] = {}
        if self.seed_path is not None and self.seed_path.exists():
            seed = json.loads(self.seed_path.read_text())
        with self.store.lock:
            self._seed.load(seed)

    # ---- helpers for tests --------------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[dict[str, Any]]:
        return self._log.select(path, method.upper() if method is not None else None)

    def meter_total(self, event_name: str, customer: str) -> int:
        return self._engine.meters.total(event_name, customer)

    # ---- requests -----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, raw_headers: dict[str, str], body: bytes) -> Response:
        """Answer one HTTP request (the server calls this; tests may too)."""
        return self._pipeline.handle(method, raw_path, raw_headers, body)
