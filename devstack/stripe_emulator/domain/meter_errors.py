"""Asynchronous meter validation: invalid meter events are accepted, then reported in thin events.

A report is due `meter_error_report_delay_seconds` (emulator clock) after the first error of the window: one
`v1.billing.meter.error_report_triggered` per meter (related object: the meter) and one
`v1.billing.meter.no_meter_found` (no related object) for unknown event names.
"""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import StripeError
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.isotime import iso
from devstack.stripe_emulator.schedule import METER_ERROR_REPORT, Task
from devstack.stripe_emulator.store import Obj, Store

from .meters import Meters
from .settings import Settings

# Codes Stripe reports asynchronously (v1.billing.meter.error_report_triggered / no_meter_found), not as a 400.
ASYNC_METER_ERROR_CODES = frozenset(
    {
        "meter_event_customer_not_found",
        "meter_event_no_customer_defined",
        "meter_event_invalid_value",
        "no_meter",
        "archived_meter",
    }
)
MAX_SAMPLE_ERRORS = 5


def _error_types(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_code: dict[str, list[dict[str, Any]]] = {}
    for err in errors:
        by_code.setdefault(str(err["code"]), []).append(err)
    return [
        {
            "code": code,
            "error_count": len(errs),
            "sample_errors": [
                {"error_message": e["message"], "request": {"identifier": e["identifier"]}}
                for e in errs[:MAX_SAMPLE_ERRORS]
            ],
        }
        for code, errs in by_code.items()
    ]


class MeterErrorReports:
    def __init__(self, store: Store, clock: Clock, events: EventBus, settings: Settings, meters: Meters) -> None:
        self.store = store
        self.clock = clock
        self.events = events
        self.settings = settings
        self.meters = meters
        # Invalid meter events awaiting their report: meter id (None: no meter) -> errors.
        self.pending_meter_errors: dict[str | None, list[dict[str, Any]]] = {}

    def reset(self) -> None:
        self.pending_meter_errors.clear()

    def queue(self, event: Any, error: StripeError) -> None:
        """Accept an invalid meter event now and report it later, like Stripe's asynchronous validation."""
        payload = event if isinstance(event, dict) else {}
        name = str(payload.get("event_name") or "")
        meter = self.meters.meter_by_event(name) or self.meters.any_meter_named(name)
        self.pending_meter_errors.setdefault(meter["id"] if meter else None, []).append(
            {
                "code": error.code,
                "message": error.message,
                "identifier": str(payload.get("identifier") or ""),
                "event_name": name,
                "at": self.clock.now(),
            }
        )

    def due(self) -> Task | None:
        firsts = [errs[0]["at"] for errs in self.pending_meter_errors.values() if errs]
        if not firsts:
            return None
        return (min(firsts) + self.settings.meter_error_report_delay, METER_ERROR_REPORT, self._flush_due)

    def _flush_due(self) -> None:
        self.flush()

    def flush(self) -> list[Obj]:
        """Emit one report per meter (and one `no_meter_found` for unknown event names); returns the v2 events."""
        out: list[Obj] = []
        now = self.clock.now()
        for meter_id, errors in list(self.pending_meter_errors.items()):
            if errors:
                out.append(self._report(meter_id, errors, now))
        self.pending_meter_errors.clear()
        return out

    def _report(self, meter_id: str | None, errors: list[dict[str, Any]], now: float) -> Obj:
        meter = self.store.find(meter_id) if meter_id else None
        subject = f"meter '{meter['event_name']}'" if meter else "unknown event names"
        data = {
            "developer_message_summary": f"There were {len(errors)} invalid meter events for {subject}.",
            "reason": {"error_count": len(errors), "error_types": _error_types(errors)},
            "validation_end": iso(now),
            "validation_start": iso(errors[0]["at"]),
        }
        if meter is not None:
            return self.events.emit_v2("v1.billing.meter.error_report_triggered", meter["id"], "billing.meter", data)
        return self.events.emit_v2("v1.billing.meter.no_meter_found", None, None, data)
