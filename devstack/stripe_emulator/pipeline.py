"""The request pipeline: parse, then for API routes simulated latency -> fault knob -> authentication ->
idempotency -> handler (under the store lock) -> idempotent save; then headers and the request log.

Hosted pages and `/_emulator/*` control routes skip latency, faults, auth and idempotency.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import forms
from .clock import Clock
from .domain.meter_sessions import MeterSessions
from .errors import (
    StripeError,
    fault_error,
    idempotency_in_flight,
    idempotency_mismatch,
    invalid,
    invalid_api_key,
    no_api_key,
    unknown_route,
)
from .events import EventBus
from .faults import Fault, Faults
from .idempotency import V1_TTL, V2_TTL, IdempotencyStore, SavedResponse, fingerprint
from .ids import new_id
from .request_log import RequestLog
from .routing import DROP, Headers, Request, Response, Route, Router
from .sdk_params import check_request
from .store import Store

API_KINDS = ("v1", "v2", "stream")
VERSION_FORMAT = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})(\.[a-z]+)?(;\s*[a-z0-9_]+=v\d+)*")
# Stripe saves a result only once the endpoint started executing: validation failures are not saved.
UNSAVED_STATUSES = (400, 401, 429)

Match = tuple[Route, dict[str, str]] | None


def error_response(exc: StripeError) -> Response:
    return Response.json(exc.body(), status=exc.status, headers=dict(exc.headers))


def fault_response(status: int, should_retry: bool | None) -> Response:
    response = error_response(fault_error(status))
    if should_retry is not None:
        response.headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return response


def recorded_fault_response(fault: Fault) -> Response:
    return fault_response(fault.status or 500, fault.should_retry)


@dataclass
class FaultPlan:
    """What the fault knob decided for one request."""

    note: dict[str, Any] | None = None
    answer: Response | None = None  # answer now, before auth (an unrecorded fault, a dropped connection)
    recorded: Fault | None = None  # answer with this fault in place of the handler (saved under the key)
    slow_ms: int = 0  # a slow endpoint: the delay happens while the request is in flight


class RequestPipeline:
    def __init__(
        self,
        router: Router,
        store: Store,
        clock: Clock,
        events: EventBus,
        faults: Faults,
        idempotency: IdempotencyStore,
        log: RequestLog,
        meter_sessions: MeterSessions,
        *,
        api_version: str,
        api_keys: set[str],
        base_url: Callable[[], str],
        checkout_wait_seconds: float,
    ) -> None:
        self.router = router
        self.store = store
        self.clock = clock
        self.events = events
        self.faults = faults
        self.idempotency = idempotency
        self.log = log
        self.meter_sessions = meter_sessions
        self.api_version = api_version
        self.api_keys = api_keys
        self.base_url = base_url
        self.checkout_wait_seconds = checkout_wait_seconds

    def handle(self, method: str, raw_path: str, raw_headers: dict[str, str], body: bytes) -> Response:
        started = time.time()
        req, found = self._request(method, raw_path, raw_headers, body)
        fault_note: dict[str, Any] | None = None
        response: Response
        try:
            if req.kind in API_KINDS:
                response, fault_note = self._api(req, found)
            else:
                response = self._call(req, found)
        except StripeError as exc:
            response = error_response(exc)
        if response is not DROP:
            self._stamp(req, response)
        if response.wait_event_ids:
            self.events.wait(response.wait_event_ids, self.checkout_wait_seconds)
        self.log.record(req, response, started, fault_note)
        return response

    # ---- parsing ------------------------------------------------------------------------------------------

    def _request(self, method: str, raw_path: str, raw_headers: dict[str, str], body: bytes) -> tuple[Request, Match]:
        parts = urlsplit(raw_path)
        path = parts.path
        headers = Headers(raw_headers)
        found = self.router.match(method, path)
        req = Request(
            method=method.upper(),
            path=path,
            query=forms.decode(parts.query),
            params={},
            headers=headers,
            raw_body=body,
            kind=found[0].kind if found else ("v2" if path.startswith("/v2/") else "v1"),
            request_id=new_id("req", 14),
            idempotency_key=headers.get("Idempotency-Key"),
            stripe_version=headers.get("Stripe-Version") or self.api_version,
            base_url=self.base_url() or f"http://{headers.get('Host', '127.0.0.1')}",
        )
        try:
            req.params = self._params(req)
        except ValueError:
            req.params = {}
        return req, found

    @staticmethod
    def _params(req: Request) -> dict[str, Any]:
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

    def _stamp(self, req: Request, response: Response) -> None:
        response.headers.setdefault("Request-Id", req.request_id)
        if req.kind in API_KINDS:
            response.headers.setdefault("Stripe-Version", req.stripe_version)
            if req.idempotency_key:
                response.headers.setdefault("Idempotency-Key", req.idempotency_key)

    # ---- API requests -------------------------------------------------------------------------------------

    def _api(self, req: Request, found: Match) -> tuple[Response, dict[str, Any] | None]:
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        plan = self._plan_fault(req)
        if plan.answer is not None:
            return plan.answer, plan.note
        self._authenticate(req)
        self._check_version(req)
        idem = req.idempotency_key if (req.method == "POST" or (req.kind == "v2" and req.method == "DELETE")) else None
        if not idem:
            if plan.slow_ms:
                time.sleep(plan.slow_ms / 1000)
            if plan.recorded is not None:
                return recorded_fault_response(plan.recorded), plan.note
            return self._call(req, found), plan.note
        return self._idempotent(req, found, idem, plan), plan.note

    def _plan_fault(self, req: Request) -> FaultPlan:
        fault = self.faults.take(req.method, req.path)
        if fault is None:
            return FaultPlan()
        plan = FaultPlan(note={"status": fault.status, "drop": fault.drop_connection, "delay_ms": fault.delay_ms})
        if fault.delay_ms and (fault.status is not None or fault.drop_connection):
            time.sleep(fault.delay_ms / 1000)
        elif fault.delay_ms:
            plan.slow_ms = fault.delay_ms
        if fault.drop_connection:
            plan.answer = DROP
        elif fault.status is not None and not fault.record:
            plan.answer = fault_response(fault.status, fault.should_retry)
        elif fault.status is not None:
            plan.recorded = fault
        return plan

    def _authenticate(self, req: Request) -> None:
        """Only the account's keys, sent as Stripe documents: ``Bearer <key>`` or Basic with the key as user name
        (``curl -u sk_test_...:``)."""
        key = api_key_from(req.headers.get("Authorization") or "")
        if req.kind == "stream":
            self.meter_sessions.check(key or "")
            req.api_key = key
            return
        if not key:
            raise no_api_key()
        if key not in self.api_keys:
            raise invalid_api_key(key)
        req.api_key = key

    def _check_version(self, req: Request) -> None:
        """A Stripe-Version header must name a version: `YYYY-MM-DD[.name]` with optional `;feature=vN` betas,
        dated no later than the emulator's own (a version it cannot know), as Stripe refuses unknown ones."""
        sent = req.headers.get("Stripe-Version")
        if sent is None:
            return
        match = VERSION_FORMAT.fullmatch(sent.strip())
        if match is None or match.group("date") > self.api_version[:10]:
            raise invalid(f"Invalid Stripe API version: {sent}", param=None)

    def _idempotent(self, req: Request, found: Match, idem: str, plan: FaultPlan) -> Response:
        """The first answer for a key is saved and replayed; a different body or a request in flight is refused."""
        scope = hashlib.sha256((req.api_key or "").encode()).hexdigest()[:16]
        ttl = V2_TTL if req.kind != "v1" else V1_TTL
        fp = fingerprint(req.method, req.path, req.params)
        state, entry = self.idempotency.begin(scope, idem, fp, self.clock.now(), ttl)
        if state == "mismatch":
            return error_response(idempotency_mismatch(idem))
        if state == "in_flight":
            return error_response(idempotency_in_flight())
        if state == "replay" and entry.response is not None:
            return _replay(entry.response)
        try:
            response = self._first_answer(req, found, plan)
        except BaseException:
            self.idempotency.finish(scope, idem, None)
            raise
        if response.status in UNSAVED_STATUSES:
            self.idempotency.finish(scope, idem, None)
        else:
            headers = dict(response.headers)
            headers["Request-Id"] = req.request_id
            self.idempotency.finish(scope, idem, SavedResponse(response.status, headers, response.body))
        return response

    def _first_answer(self, req: Request, found: Match, plan: FaultPlan) -> Response:
        if plan.slow_ms:
            time.sleep(plan.slow_ms / 1000)
        if plan.recorded is not None:
            return recorded_fault_response(plan.recorded)
        try:
            return self._call(req, found)
        except StripeError as exc:
            return error_response(exc)

    def _call(self, req: Request, found: Match) -> Response:
        if found is None:
            raise unknown_route(req.method, req.path)
        route, path_params = found
        req.path_params = path_params
        if req.kind == "v1":
            check_request(req.method, req.path, req.params, req.stripe_version)
        self.events.request_context.value = (req.request_id, req.idempotency_key) if req.kind in ("v1", "v2") else None
        try:
            with self.store.lock:
                result = route.handler(req)
        finally:
            self.events.request_context.value = None
        if isinstance(result, Response):
            return result
        return Response.json(result)


def api_key_from(authorization: str) -> str | None:
    """The key in an Authorization header (Bearer, or Basic ``key:`` with an empty password); None without one."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return credentials or None
        return decoded.partition(":")[0] or None
    return None


def _replay(saved: SavedResponse) -> Response:
    headers = dict(saved.headers)
    headers["Idempotent-Replayed"] = "true"
    headers["Original-Request"] = headers.get("Request-Id", "")
    return Response(status=saved.status, body=saved.body, headers=headers)
