"""`StripeEmulator`: wires store, clock, events, faults, idempotency and routes; runs the request pipeline.

Pipeline for API routes: simulated latency -> fault knob -> authentication -> idempotency -> handler (under the
store lock) -> idempotent save -> request log. Hosted pages and `/_emulator/*` control routes skip auth and
idempotency.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import stripe

from . import forms
from .billing import Billing
from .clock import Clock
from .errors import StripeError, authentication, fault_error, idempotency_in_flight, idempotency_mismatch
from .events import EventBus
from .faults import Faults
from .idempotency import V1_TTL, V2_TTL, IdempotencyStore, SavedResponse, fingerprint
from .ids import new_id
from .routing import Headers, Request, Response, Router
from .server import DROP, EmulatorServer
from .store import Store

DEFAULT_API_VERSION: str = stripe.api_version
DEFAULT_SEED = Path(__file__).resolve().parent.parent / "seed.json"
TEST_KEY_PREFIXES = ("sk" + "_test_", "rk" + "_test_")


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
        self.api_keys = set(api_keys)
        self.checkout_wait_seconds = checkout_wait_seconds
        self.public_url = public_url or ""
        self.store = Store()
        self.clock = Clock()
        self.faults = Faults()
        self.faults.latency_ms = latency_ms
        self.idempotency = IdempotencyStore()
        self.request_log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self.events = EventBus(
            self.store,
            self.clock,
            api_version,
            retry_base_seconds=webhook_retry_base_seconds,
            max_attempts=webhook_max_attempts,
            delivery_timeout_seconds=webhook_timeout_seconds,
        )
        self.billing = Billing(
            self,
            dunning_retries=dunning_retries,
            dunning_retry_interval_days=dunning_retry_interval_days,
            meter_error_report_delay_seconds=meter_error_report_delay_seconds,
            invoice_upcoming_days=invoice_upcoming_days,
            dunning_end_action=dunning_end_action,
            dunning_mark_uncollectible=dunning_mark_uncollectible,
            async_payment_delay_days=async_payment_delay_days,
            synchronous_meter_errors=synchronous_meter_errors,
        )
        self.events.now_fn = self.billing.now
        from .entitlements import Entitlements
        from .pricing_plans import PricingPlans

        self.entitlements = Entitlements(self)
        self.pricing_plans = PricingPlans(self)
        self.clock.on_advance(self.billing.tick)
        self.router = Router()
        self._server: EmulatorServer | None = None
        from .resources import register_all

        register_all(self)
        self.load_seed()

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on 127.0.0.1 (never a public interface); returns the base URL."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator binds to loopback only")
        self._server = EmulatorServer(self, host, port)
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
            with self._log_lock:
                self.request_log.clear()
            self.clock.reset()
            self.billing.reset()
            self.load_seed()

    def load_seed(self) -> None:
        from .resources.catalog import load_seed

        seed: dict[str, Any] = {}
        if self.seed_path is not None and self.seed_path.exists():
            seed = json.loads(self.seed_path.read_text())
        with self.store.lock:
            load_seed(self, seed)

    # ---- helpers for tests --------------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[dict[str, Any]]:
        with self._log_lock:
            return [
                r for r in self.request_log if r["path"] == path and (method is None or r["method"] == method.upper())
            ]

    def meter_total(self, event_name: str, customer: str) -> int:
        return self.billing.meter_total(event_name, customer)

    # ---- pipeline -----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, raw_headers: dict[str, str], body: bytes) -> Response:
        started = time.time()
        parts = urlsplit(raw_path)
        path = parts.path
        headers = Headers(raw_headers)
        query = forms.decode(parts.query)
        found = self.router.match(method, path)
        kind = found[0].kind if found else ("v2" if path.startswith("/v2/") else "v1")
        req = Request(
            method=method.upper(),
            path=path,
            query=query,
            params={},
            headers=headers,
            raw_body=body,
            kind=kind,
            request_id=new_id("req", 14),
            idempotency_key=headers.get("Idempotency-Key"),
            stripe_version=headers.get("Stripe-Version") or self.api_version,
            base_url=self.public_url or f"http://{headers.get('Host', '127.0.0.1')}",
        )
        fault_note: dict[str, Any] | None = None
        try:
            req.params = self._params(req)
        except ValueError:
            req.params = {}
        response: Response
        try:
            if kind in ("v1", "v2", "stream"):
                response, fault_note = self._api(req, found)
            else:
                response = self._call(req, found)
        except StripeError as exc:
            response = self._error(req, exc)
        if response is not DROP:
            response.headers.setdefault("Request-Id", req.request_id)
            if kind in ("v1", "v2", "stream"):
                response.headers.setdefault("Stripe-Version", req.stripe_version)
                if req.idempotency_key:
                    response.headers.setdefault("Idempotency-Key", req.idempotency_key)
        if response.wait_event_ids:
            self.events.wait(response.wait_event_ids, self.checkout_wait_seconds)
        self._log(req, response, started, fault_note)
        return response

    def _params(self, req: Request) -> dict[str, Any]:
        if req.method == "GET" or (req.method == "DELETE" and not req.raw_body):
            return dict(req.query)
        text = req.raw_body.decode("utf-8") if req.raw_body else ""
        ctype = (req.headers.get("Content-Type") or "").lower()
        if req.kind in ("v2", "stream") or "json" in ctype or text.lstrip().startswith("{"):
            data = json.loads(text) if text.strip() else {}
            return data if isinstance(data, dict) else {"_": data}
        params = forms.decode(text)
        for k, v in req.query.items():
            params.setdefault(k, v)
        return params

    def _authenticate(self, req: Request) -> None:
        auth = req.headers.get("Authorization") or ""
        key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if req.kind == "stream":
            self.billing.meters_check_session_token(key)
            req.api_key = key
            return
        if not key or not (key.startswith(TEST_KEY_PREFIXES) or key in self.api_keys):
            raise authentication("Invalid API Key provided." if key else "You did not provide an API key.")
        req.api_key = key

    def _api(self, req: Request, found: Any) -> tuple[Response, dict[str, Any] | None]:
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        fault = self.faults.take(req.method, req.path)
        note = None
        recorded_fault = None
        slow_ms = 0
        if fault is not None:
            note = {"status": fault.status, "drop": fault.drop_connection, "delay_ms": fault.delay_ms}
            if fault.delay_ms and (fault.status is not None or fault.drop_connection):
                time.sleep(fault.delay_ms / 1000)
            elif fault.delay_ms:
                # A slow endpoint (no error): the delay happens while the request is in flight.
                slow_ms = fault.delay_ms
            if fault.drop_connection:
                return DROP, note
            if fault.status is not None:
                if not fault.record:
                    return self._fault_response(req, fault.status, fault.should_retry), note
                recorded_fault = fault
        self._authenticate(req)
        idem = req.idempotency_key if (req.method == "POST" or (req.kind == "v2" and req.method == "DELETE")) else None
        if not idem:
            if slow_ms:
                time.sleep(slow_ms / 1000)
            if recorded_fault is not None:
                return self._fault_response(req, recorded_fault.status or 500, recorded_fault.should_retry), note
            return self._call(req, found), note
        scope = hashlib.sha256((req.api_key or "").encode()).hexdigest()[:16]
        fp = fingerprint(req.method, req.path, req.params)
        ttl = V2_TTL if req.kind != "v1" else V1_TTL
        state, entry = self.idempotency.begin(scope, idem, fp, self.clock.now(), ttl)
        if state == "mismatch":
            return self._error(req, idempotency_mismatch(idem)), note
        if state == "in_flight":
            return self._error(req, idempotency_in_flight()), note
        if state == "replay" and entry.response is not None:
            saved = entry.response
            headers = dict(saved.headers)
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = headers.get("Request-Id", "")
            return Response(status=saved.status, body=saved.body, headers=headers), note
        try:
            if slow_ms:
                time.sleep(slow_ms / 1000)
            if recorded_fault is not None:
                response = self._fault_response(req, recorded_fault.status or 500, recorded_fault.should_retry)
            else:
                try:
                    response = self._call(req, found)
                except StripeError as exc:
                    response = self._error(req, exc)
        except BaseException:
            self.idempotency.finish(scope, idem, None)
            raise
        if response.status in (400, 401, 429):
            # Stripe saves a result only once the endpoint started executing: validation failures are not saved.
            self.idempotency.finish(scope, idem, None)
        else:
            headers = dict(response.headers)
            headers["Request-Id"] = req.request_id
            self.idempotency.finish(scope, idem, SavedResponse(response.status, headers, response.body))
        return response, note

    def _call(self, req: Request, found: Any) -> Response:
        if found is None:
            from .errors import unknown_route

            raise unknown_route(req.method, req.path)
        route, path_params = found
        req.path_params = path_params
        self.events.request_context.value = (req.request_id, req.idempotency_key) if req.kind in ("v1", "v2") else None
        try:
            with self.store.lock:
                result = route.handler(req)
        finally:
            self.events.request_context.value = None
        if isinstance(result, Response):
            return result
        return Response.json(result)

    def _error(self, _req: Request, exc: StripeError) -> Response:
        headers = dict(exc.headers)
        return Response.json(exc.body(), status=exc.status, headers=headers)

    def _fault_response(self, req: Request, status: int, should_retry: bool | None) -> Response:
        response = self._error(req, fault_error(status))
        if should_retry is not None:
            response.headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
        return response

    def _log(self, req: Request, response: Response, started: float, fault: dict[str, Any] | None) -> None:
        headers = {k: v for k, v in req.headers.items() if k not in ("authorization", "cookie")}
        entry = {
            "method": req.method,
            "path": req.path,
            "kind": req.kind,
            "params": req.params,
            "query": req.query,
            "headers": headers,
            "idempotency_key": req.idempotency_key,
            "stripe_version": req.headers.get("Stripe-Version"),
            "status": None if response is DROP else response.status,
            "replayed": response is not DROP and response.headers.get("Idempotent-Replayed") == "true",
            "request_id": req.request_id,
            "fault": fault,
            "time": started,
            "duration_ms": round((time.time() - started) * 1000, 2),
        }
        with self._log_lock:
            self.request_log.append(entry)
