"""Meter events: v1 `/v1/billing/meter_events`, v2 sessions, streams and `/v2/billing/meter_events`, and v1
`/v1/billing/meter_event_adjustments` (cancel).

Like Stripe, an event whose customer is unknown or missing or whose value is not an integer (and, v2 only, whose
event name has no or an archived meter) is ACCEPTED (200), never aggregated, and reported later
(`domain/meter_errors.py`). v1 keeps a synchronous 400 for an unknown/archived event name, the timestamp window
and duplicates; v2 keeps one (whole request) for the timestamp window and malformed bodies. A duplicate inside a
v2 stream is accepted but dropped (recorded as a rejection).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.domain.meter_errors import ASYNC_METER_ERROR_CODES, MeterErrorReports
from devstack.stripe_emulator.domain.meter_sessions import MeterSessions
from devstack.stripe_emulator.domain.meters import Meters, check_meter_timestamp
from devstack.stripe_emulator.domain.settings import Settings
from devstack.stripe_emulator.errors import StripeError, invalid, missing_param
from devstack.stripe_emulator.forms import as_int
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.isotime import iso
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj

MAX_STREAM_EVENTS = 100
# v1 answers 400 `no_meter` synchronously; customer and value problems are reported asynchronously.
V1_ASYNC_CODES = ASYNC_METER_ERROR_CODES - {"no_meter", "archived_meter"}

# A v2 event that passed the synchronous checks: (meter, customer, value, timestamp, identifier, payload).
V2Event = tuple[Obj, str, int, int, str, dict[str, Any]]


def _parse_ts(value: Any, param: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise invalid(f"Invalid timestamp: {value}", param=param) from None


def _duplicate(identifier: str, detail: str = "") -> StripeError:
    return invalid(
        f"An event with identifier '{identifier}' already exists{detail}.",
        param="identifier",
        code="duplicate_meter_event",
    )


class MeterEventsApi:
    def __init__(
        self,
        clock: Clock,
        settings: Settings,
        meters: Meters,
        sessions: MeterSessions,
        errors: MeterErrorReports,
    ) -> None:
        self.clock = clock
        self.settings = settings
        self.meters = meters
        self.sessions = sessions
        self.errors = errors

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/billing/meter_events", self.create_v1),
            RouteSpec("POST", "/v2/billing/meter_event_session", self.create_session),
            RouteSpec("POST", "/v2/billing/meter_event_stream", self.stream, kind="stream"),
            RouteSpec("POST", "/v2/billing/meter_events", self.create_v2),
            RouteSpec("POST", "/v1/billing/meter_event_adjustments", self.create_adjustment),
        ]

    def create_adjustment(self, req: Request) -> Obj:
        """`POST /v1/billing/meter_event_adjustments` (type cancel, the only type Stripe has)."""
        p = req.params
        event_name = p.get("event_name")
        if not event_name:
            raise missing_param("event_name")
        if p.get("type", "cancel") != "cancel":
            raise invalid("Invalid type: must be cancel.", param="type")
        identifier = (p.get("cancel") or {}).get("identifier")
        if not identifier:
            raise missing_param("cancel[identifier]")
        self.meters.cancel(str(event_name), str(identifier))
        return {
            "object": "billing.meter_event_adjustment",
            "cancel": {"identifier": str(identifier)},
            "event_name": str(event_name),
            "livemode": False,
            "status": "pending",
            "type": "cancel",
        }

    def _check_timestamp(self, ts: int | None, prefix: str) -> None:
        """The timestamp window is checked before anything else, so it fails the request even for bad events."""
        if ts is not None:
            check_meter_timestamp(ts, self.clock.now(), prefix + "timestamp")

    # ---- v1 ---------------------------------------------------------------------------------------------

    def create_v1(self, req: Request) -> Obj:
        p = req.params
        ts_raw = p.get("timestamp")
        self._check_timestamp(None if ts_raw in (None, "") else as_int(ts_raw, "timestamp"), "")
        try:
            meter, customer, value, ts = self.meters.validate(p)
        except StripeError as exc:
            if exc.code not in V1_ASYNC_CODES or self.settings.synchronous_meter_errors:
                raise
            self.errors.queue(p, exc)
            return self._v1_echo(p)
        identifier = str(p.get("identifier") or new_id("mev", 20))
        if self.meters.is_duplicate(identifier):
            raise _duplicate(identifier, " (identifiers must be unique within a rolling 24 hour period)")
        self.meters.record(meter, customer, value, ts, identifier, "v1", dict(p.get("payload") or {}))
        return self._v1_echo({**p, "identifier": identifier, "timestamp": ts})

    def _v1_echo(self, p: dict[str, Any]) -> Obj:
        ts = p.get("timestamp")
        return {
            "object": "billing.meter_event",
            "created": self.clock.now_int(),
            "event_name": str(p.get("event_name")),
            "identifier": str(p.get("identifier") or new_id("mev", 20)),
            "livemode": False,
            "payload": dict(p.get("payload") or {}),
            "timestamp": int(ts) if ts not in (None, "") else self.clock.now_int(),
        }

    # ---- v2 ---------------------------------------------------------------------------------------------

    def create_session(self, _req: Request) -> Obj:
        token, expires = self.sessions.new_token()
        return {
            "id": new_id("mes_test", 32),
            "object": "v2.billing.meter_event_session",
            "authentication_token": token,
            "created": iso(self.clock.now()),
            "expires_at": iso(expires),
            "livemode": False,
        }

    def _v2_validate(self, event: Any, prefix: str) -> V2Event | StripeError:
        """The checked event, or the error Stripe reports asynchronously (synchronous errors raise)."""
        if not isinstance(event, dict):
            raise invalid("Each event must be an object.", param=prefix.rstrip("."))
        ts = _parse_ts(event.get("timestamp"), prefix + "timestamp")
        self._check_timestamp(ts, prefix)
        try:
            meter, customer, value, ts_checked = self.meters.validate({**event, "timestamp": ts}, prefix)
        except StripeError as exc:
            if exc.code not in ASYNC_METER_ERROR_CODES or self.settings.synchronous_meter_errors:
                raise
            return exc
        identifier = str(event.get("identifier") or new_id("mev", 20))
        return meter, customer, value, ts_checked, identifier, dict(event.get("payload") or {})

    def stream(self, req: Request) -> Obj:
        events = req.params.get("events")
        if not isinstance(events, list) or not events:
            raise missing_param("events")
        if len(events) > MAX_STREAM_EVENTS:
            raise invalid(f"A stream request takes at most {MAX_STREAM_EVENTS} events.", param="events")
        checked = [self._v2_validate(e, f"events[{i}].") for i, e in enumerate(events)]
        seen: set[str] = set()
        for raw, result in zip(events, checked, strict=True):
            if isinstance(result, StripeError):
                self.errors.queue(raw, result)
                continue
            meter, customer, value, ts, identifier, payload = result
            if self.meters.is_duplicate(identifier) or identifier in seen:
                self.meters.reject_duplicate(identifier, "v2")
                continue
            seen.add(identifier)
            self.meters.record(meter, customer, value, ts, identifier, "v2", payload)
        return {}

    def create_v2(self, req: Request) -> Obj:
        result = self._v2_validate(req.params, "")
        if isinstance(result, StripeError):
            self.errors.queue(req.params, result)
            return self._v2_echo(req.params)
        meter, customer, value, ts, identifier, payload = result
        if self.meters.is_duplicate(identifier):
            raise _duplicate(identifier)
        self.meters.record(meter, customer, value, ts, identifier, "v2", payload)
        return {
            "object": "v2.billing.meter_event",
            "created": iso(self.clock.now()),
            "event_name": meter["event_name"],
            "identifier": identifier,
            "livemode": False,
            "payload": payload,
            "timestamp": iso(ts),
        }

    def _v2_echo(self, p: dict[str, Any]) -> Obj:
        """The answer for an event accepted now and reported later."""
        ts_in = _parse_ts(p.get("timestamp"), "timestamp")
        return {
            "object": "v2.billing.meter_event",
            "created": iso(self.clock.now()),
            "event_name": str(p.get("event_name")),
            "identifier": str(p.get("identifier") or new_id("mev", 20)),
            "livemode": False,
            "payload": dict(p.get("payload") or {}),
            "timestamp": iso(ts_in if ts_in is not None else self.clock.now()),
        }
