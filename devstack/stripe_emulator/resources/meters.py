"""Billing meters, v1 meter events, v2 meter event sessions and streams, and event summaries.

Dedup: an `identifier` seen within the last 24 h (emulator clock) is rejected. v1 answers 400
`duplicate_meter_event`. v2 streams are asynchronous in Stripe, so a duplicate inside a v2 stream is accepted
(200) but dropped (not aggregated) and recorded in `emu.billing.meter_rejections`.

Asynchronous validation (like Stripe): an event whose customer is unknown or missing, whose value is not an
integer, or (v2 only) whose event name has no meter or an archived meter is ACCEPTED by the call (200), never
aggregated, and reported later, `meter_error_report_delay_seconds` (emulator clock) after the first error of the
window: a thin `v1.billing.meter.error_report_triggered` per meter (related object: the meter; the full event at
`GET /v2/core/events/{id}` carries `reason.error_types[]`, `sample_errors[].request.identifier`, ...) and a thin
`v1.billing.meter.no_meter_found` (no related object) for unknown event names. `POST /_emulator/meter_errors/flush`
reports at once. v1 keeps a synchronous 400 only for an unknown/archived event name (`no_meter`), the timestamp
window and duplicates; v2 keeps a synchronous 400 (whole request) for the timestamp window and malformed bodies.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.billing import ASYNC_METER_ERROR_CODES, check_meter_timestamp
from devstack.stripe_emulator.errors import StripeError, invalid, missing_param
from devstack.stripe_emulator.events import iso
from devstack.stripe_emulator.forms import as_int
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, list_object, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator

MAX_STREAM_EVENTS = 100
# v1 answers 400 `no_meter` synchronously; customer and value problems are reported asynchronously.
V1_ASYNC_CODES = ASYNC_METER_ERROR_CODES - {"no_meter", "archived_meter"}


def make_meter(emu: StripeEmulator, params: dict[str, Any], oid: str | None = None) -> Obj:
    now = emu.clock.now_int()
    for other in emu.store.all("billing.meter"):
        if other["event_name"] == params["event_name"] and other["status"] == "active":
            raise invalid(
                f"An active meter with event_name '{params['event_name']}' already exists.", param="event_name"
            )
    meter: Obj = {
        "id": oid or new_id("mtr_test", 32),
        "object": "billing.meter",
        "created": now,
        "customer_mapping": params.get("customer_mapping")
        or {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "default_aggregation": params.get("default_aggregation") or {"formula": "sum"},
        "display_name": params.get("display_name") or params["event_name"],
        "event_name": params["event_name"],
        "event_time_window": params.get("event_time_window"),
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": params.get("value_settings") or {"event_payload_key": "value"},
    }
    return emu.store.put(meter)


def _parse_ts(value: Any, param: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise invalid(f"Invalid timestamp: {value}", param=param) from None


def register(emu: StripeEmulator) -> None:
    store = emu.store
    billing = emu.billing

    def list_(req: Request) -> Obj:
        objs = store.all("billing.meter")
        if req.params.get("status"):
            objs = [o for o in objs if o["status"] == req.params["status"]]
        return paginate(store, objs, req.params, "/v1/billing/meters", req.expand)

    def create(req: Request) -> Obj:
        for field in ("display_name", "event_name", "default_aggregation"):
            if not req.params.get(field):
                raise missing_param(field)
        return store.render(make_meter(emu, req.params))

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "billing.meter"))

    def summaries(req: Request) -> Obj:
        meter = store.get(req.path_params["id"], "billing.meter")
        p = req.params
        for field in ("customer", "start_time", "end_time"):
            if p.get(field) in (None, ""):
                raise missing_param(field)
        start = as_int(p["start_time"], "start_time")
        end = as_int(p["end_time"], "end_time")
        if end <= start:
            raise invalid("end_time must be after start_time.", param="end_time")
        window = p.get("value_grouping_window")
        step = {"hour": 3600, "day": 86400}.get(str(window)) if window else None
        if window and step is None:
            raise invalid("value_grouping_window must be hour or day.", param="value_grouping_window")
        buckets = [(start, end)] if step is None else [(t, min(t + step, end)) for t in range(start, end, step)]
        formula = meter["default_aggregation"]["formula"]
        data: list[Obj] = []
        for b_start, b_end in buckets:
            values = [
                e["value"]
                for e in billing.meter_events
                if e["meter"] == meter["id"] and e["customer"] == p["customer"] and b_start <= e["timestamp"] < b_end
            ]
            if formula == "count":
                agg = float(len(values))
            elif formula == "last":
                agg = float(values[-1]) if values else 0.0
            else:
                agg = float(sum(values))
            data.append(
                {
                    "id": new_id("mtrusg", 16),
                    "object": "billing.meter_event_summary",
                    "aggregated_value": agg,
                    "end_time": b_end,
                    "livemode": False,
                    "meter": meter["id"],
                    "start_time": b_start,
                }
            )
        data.reverse()
        return paginate(store, data, p, f"/v1/billing/meters/{meter['id']}/event_summaries")

    def v1_event(req: Request) -> Obj:
        p = req.params
        ts_raw = p.get("timestamp")
        _check_timestamp(None if ts_raw in (None, "") else as_int(ts_raw, "timestamp"), "")
        try:
            meter, customer, value, ts = billing.validate_meter_event(p)
        except StripeError as exc:
            if exc.code not in V1_ASYNC_CODES or billing.synchronous_meter_errors:
                raise
            billing.queue_meter_error(p, exc)
            return v1_echo(p)
        identifier = str(p.get("identifier") or new_id("mev", 20))
        if billing.is_duplicate(identifier):
            raise invalid(
                f"An event with identifier '{identifier}' already exists (identifiers must be unique within "
                "a rolling 24 hour period).",
                param="identifier",
                code="duplicate_meter_event",
            )
        billing.record_meter_event(meter, customer, value, ts, identifier, "v1", dict(p.get("payload") or {}))
        return v1_echo({**p, "identifier": identifier, "timestamp": ts})

    def v1_echo(p: dict[str, Any]) -> Obj:
        ts = p.get("timestamp")
        return {
            "object": "billing.meter_event",
            "created": emu.clock.now_int(),
            "event_name": str(p.get("event_name")),
            "identifier": str(p.get("identifier") or new_id("mev", 20)),
            "livemode": False,
            "payload": dict(p.get("payload") or {}),
            "timestamp": int(ts) if ts not in (None, "") else emu.clock.now_int(),
        }

    def v2_session(_req: Request) -> Obj:
        token, expires = billing.new_session_token()
        return {
            "id": new_id("mes_test", 32),
            "object": "v2.billing.meter_event_session",
            "authentication_token": token,
            "created": iso(emu.clock.now()),
            "expires_at": iso(expires),
            "livemode": False,
        }

    def _v2_validate(event: Any, prefix: str) -> tuple[Obj, str, int, int, str, dict[str, Any]] | StripeError:
        """The checked event, or the error Stripe reports asynchronously (synchronous errors raise)."""
        if not isinstance(event, dict):
            raise invalid("Each event must be an object.", param=prefix.rstrip("."))
        ts = _parse_ts(event.get("timestamp"), prefix + "timestamp")
        _check_timestamp(ts, prefix)
        try:
            meter, customer, value, ts_checked = billing.validate_meter_event({**event, "timestamp": ts}, prefix)
        except StripeError as exc:
            if exc.code not in ASYNC_METER_ERROR_CODES or billing.synchronous_meter_errors:
                raise
            return exc
        identifier = str(event.get("identifier") or new_id("mev", 20))
        return meter, customer, value, ts_checked, identifier, dict(event.get("payload") or {})

    def _check_timestamp(ts: int | None, prefix: str) -> None:
        """The timestamp window is checked before anything else, so it fails the request even for bad events."""
        if ts is not None:
            check_meter_timestamp(ts, emu.clock.now(), prefix + "timestamp")

    def v2_stream(req: Request) -> Obj:
        events = req.params.get("events")
        if not isinstance(events, list) or not events:
            raise missing_param("events")
        if len(events) > MAX_STREAM_EVENTS:
            raise invalid(f"A stream request takes at most {MAX_STREAM_EVENTS} events.", param="events")
        checked = [_v2_validate(e, f"events[{i}].") for i, e in enumerate(events)]
        seen: set[str] = set()
        for raw, result in zip(events, checked, strict=True):
            if isinstance(result, StripeError):
                billing.queue_meter_error(raw, result)
                continue
            meter, customer, value, ts, identifier, payload = result
            if billing.is_duplicate(identifier) or identifier in seen:
                billing.meter_rejections.append({"identifier": identifier, "reason": "duplicate", "source": "v2"})
                continue
            seen.add(identifier)
            billing.record_meter_event(meter, customer, value, ts, identifier, "v2", payload)
        return {}

    def v2_event(req: Request) -> Obj:
        result = _v2_validate(req.params, "")
        if isinstance(result, StripeError):
            billing.queue_meter_error(req.params, result)
            ts_in = _parse_ts(req.params.get("timestamp"), "timestamp")
            return {
                "object": "v2.billing.meter_event",
                "created": iso(emu.clock.now()),
                "event_name": str(req.params.get("event_name")),
                "identifier": str(req.params.get("identifier") or new_id("mev", 20)),
                "livemode": False,
                "payload": dict(req.params.get("payload") or {}),
                "timestamp": iso(ts_in if ts_in is not None else emu.clock.now()),
            }
        meter, customer, value, ts, identifier, payload = result
        if billing.is_duplicate(identifier):
            raise invalid(
                f"An event with identifier '{identifier}' already exists.",
                param="identifier",
                code="duplicate_meter_event",
            )
        billing.record_meter_event(meter, customer, value, ts, identifier, "v2", payload)
        return {
            "object": "v2.billing.meter_event",
            "created": iso(emu.clock.now()),
            "event_name": meter["event_name"],
            "identifier": identifier,
            "livemode": False,
            "payload": payload,
            "timestamp": iso(ts),
        }

    def usage(req: Request) -> Obj:
        """Emulator-only: raw accepted meter events (for oracles)."""
        rows = [
            e for e in billing.meter_events if not req.params.get("customer") or e["customer"] == req.params["customer"]
        ]
        return list_object(rows, "/_emulator/meter_events")

    def set_status(status: str) -> Any:
        def handler(req: Request) -> Obj:
            meter = store.get(req.path_params["id"], "billing.meter")
            if status == "active" and meter["status"] != "active" and billing.meter_by_event(meter["event_name"]):
                raise invalid(f"An active meter with event_name '{meter['event_name']}' already exists.")
            meter["status"] = status
            meter["status_transitions"]["deactivated_at"] = emu.clock.now_int() if status == "inactive" else None
            meter["updated"] = emu.clock.now_int()
            return store.render(meter)

        return handler

    def flush_errors(_req: Request) -> Obj:
        """Emulator-only: emit the pending meter error reports now."""
        return list_object([store.render(e) for e in billing.flush_meter_errors()], "/_emulator/meter_errors/flush")

    r = emu.router
    r.add("POST", "/v1/billing/meters/{id}/deactivate", set_status("inactive"))
    r.add("POST", "/v1/billing/meters/{id}/reactivate", set_status("active"))
    r.add("POST", "/_emulator/meter_errors/flush", flush_errors, kind="control")
    r.add("GET", "/v1/billing/meters", list_)
    r.add("POST", "/v1/billing/meters", create)
    r.add("GET", "/v1/billing/meters/{id}", retrieve)
    r.add("GET", "/v1/billing/meters/{id}/event_summaries", summaries)
    r.add("POST", "/v1/billing/meter_events", v1_event)
    r.add("POST", "/v2/billing/meter_event_session", v2_session)
    r.add("POST", "/v2/billing/meter_event_stream", v2_stream, kind="stream")
    r.add("POST", "/v2/billing/meter_events", v2_event)
    r.add("GET", "/_emulator/meter_events", usage, kind="control")
