"""Billing meters and the ledger of accepted meter events (what usage-based invoice lines are computed from).

Dedup: an `identifier` seen within the last 24 h (emulator clock) is a duplicate.
"""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import invalid
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.store import Obj, Store

from .periods import DAY

METER_DEDUP_WINDOW = 24 * 3600
METER_PAST_LIMIT = 35 * DAY
METER_FUTURE_LIMIT = 5 * 60
SUMMARY_STEPS = {"hour": 3600, "day": 86400}

# A checked meter event: (meter, customer id, value, timestamp).
CheckedEvent = tuple[Obj, str, int, int]


def check_meter_timestamp(timestamp: int, now: float, param: str) -> None:
    """Stripe's window for meter events: at most 35 days in the past and 5 minutes in the future."""
    if timestamp < now - METER_PAST_LIMIT:
        raise invalid("Timestamp must be within the past 35 days.", param=param, code="timestamp_too_far_in_past")
    if timestamp > now + METER_FUTURE_LIMIT:
        raise invalid(
            "Timestamp must not be more than 5 minutes in the future.", param=param, code="timestamp_in_future"
        )


def aggregate(formula: str, values: list[int]) -> float:
    if formula == "count":
        return float(len(values))
    if formula == "last":
        return float(values[-1]) if values else 0.0
    return float(sum(values))


class Meters:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.meter_events: list[dict[str, Any]] = []
        self.meter_identifiers: dict[str, float] = {}
        # Duplicates dropped from v2 streams (accepted by the call, never aggregated).
        self.meter_rejections: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.meter_events.clear()
        self.meter_identifiers.clear()
        self.meter_rejections.clear()

    # ---- meters ---------------------------------------------------------------------------------------

    def make_meter(self, params: dict[str, Any], oid: str | None = None) -> Obj:
        now = self.clock.now_int()
        if self.meter_by_event(params["event_name"]) is not None:
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
        return self.store.put(meter)

    def set_status(self, meter: Obj, status: str) -> None:
        """Deactivate (`inactive`) or reactivate (`active`) a meter."""
        if status == "active" and meter["status"] != "active" and self.meter_by_event(meter["event_name"]):
            raise invalid(f"An active meter with event_name '{meter['event_name']}' already exists.")
        meter["status"] = status
        meter["status_transitions"]["deactivated_at"] = self.clock.now_int() if status == "inactive" else None
        meter["updated"] = self.clock.now_int()

    def meter_by_event(self, event_name: str) -> Obj | None:
        """The active meter for an event name."""
        return next(
            (m for m in self.store.all("billing.meter") if m["event_name"] == event_name and m["status"] == "active"),
            None,
        )

    def any_meter_named(self, event_name: str) -> Obj | None:
        """The newest meter for an event name, archived or not."""
        return next((m for m in self.store.all("billing.meter") if m["event_name"] == event_name), None)

    # ---- validation -----------------------------------------------------------------------------------

    def validate(self, event: dict[str, Any], param_prefix: str = "") -> CheckedEvent:
        """Shared v1/v2 checks: meter, customer, value, timestamp window."""
        meter = self._meter_for(event.get("event_name"), param_prefix)
        payload = event.get("payload") or {}
        customer = self._customer_of(meter, payload, param_prefix)
        value = self._value_of(meter, payload, param_prefix)
        now = self.clock.now()
        ts = event.get("timestamp")
        timestamp = int(now) if ts in (None, "") else int(ts)
        check_meter_timestamp(timestamp, now, param_prefix + "timestamp")
        return meter, customer, value, timestamp

    def _meter_for(self, name: Any, param_prefix: str) -> Obj:
        if not name:
            raise invalid(
                "Missing required param: event_name.", param=param_prefix + "event_name", code="parameter_missing"
            )
        meter = self.meter_by_event(str(name))
        if meter is not None:
            return meter
        archived = self.any_meter_named(name)
        if archived is not None:
            raise invalid(
                f"The meter '{archived['id']}' for event name '{name}' is inactive (archived).",
                param=param_prefix + "event_name",
                code="archived_meter",
            )
        raise invalid(
            f"No active meter was found for event name '{name}'.",
            param=param_prefix + "event_name",
            code="no_meter",
        )

    def _customer_of(self, meter: Obj, payload: dict[str, Any], param_prefix: str) -> str:
        key = meter["customer_mapping"]["event_payload_key"]
        customer = payload.get(key)
        if not customer:
            raise invalid(
                f"The payload must contain '{key}'.",
                param=f"{param_prefix}payload[{key}]",
                code="meter_event_no_customer_defined",
            )
        cus = self.store.find(str(customer))
        if cus is None or cus["object"] != "customer":
            raise invalid(
                f"No such customer: '{customer}'",
                param=f"{param_prefix}payload[{key}]",
                code="meter_event_customer_not_found",
            )
        return str(customer)

    @staticmethod
    def _value_of(meter: Obj, payload: dict[str, Any], param_prefix: str) -> int:
        value_key = meter["value_settings"]["event_payload_key"]
        raw_value = payload.get(value_key, "1")
        try:
            return int(str(raw_value))
        except ValueError:
            raise invalid(
                f"The value '{raw_value}' is not an integer.",
                param=f"{param_prefix}payload[{value_key}]",
                code="meter_event_invalid_value",
            ) from None

    # ---- the ledger -----------------------------------------------------------------------------------

    def is_duplicate(self, identifier: str) -> bool:
        seen = self.meter_identifiers.get(identifier)
        return seen is not None and self.clock.now() - seen < METER_DEDUP_WINDOW

    def record(
        self, meter: Obj, customer: str, value: int, ts: int, identifier: str, source: str, payload: dict[str, Any]
    ) -> None:
        self.meter_identifiers[identifier] = self.clock.now()
        self.meter_events.append(
            {
                "meter": meter["id"],
                "event_name": meter["event_name"],
                "customer": customer,
                "value": value,
                "timestamp": ts,
                "identifier": identifier,
                "source": source,
                "payload": payload,
                "received": self.clock.now(),
            }
        )

    def cancel(self, event_name: str, identifier: str) -> None:
        """A meter event adjustment of type cancel: the event stops counting. Stripe accepts it only within 24 h of
        receiving the event, and only for an event it has under that meter's event name."""
        event = next(
            (e for e in self.meter_events if e["identifier"] == identifier and e["event_name"] == event_name), None
        )
        if event is None:
            raise invalid(f"No meter event with identifier '{identifier}'.", param="cancel[identifier]")
        if self.clock.now() - float(event["received"]) > METER_DEDUP_WINDOW:
            raise invalid("Meter events can only be canceled within 24 hours of creation.", param="cancel[identifier]")
        self.meter_events.remove(event)

    def reject_duplicate(self, identifier: str, source: str) -> None:
        self.meter_rejections.append({"identifier": identifier, "reason": "duplicate", "source": source})

    def usage_between(self, meter_id: str | None, customer: str, start: int, end: int) -> int:
        return sum(
            e["value"]
            for e in self.meter_events
            if (meter_id is None or e["meter"] == meter_id)
            and e["customer"] == customer
            and start <= e["timestamp"] < end
        )

    def total(self, event_name: str, customer: str) -> int:
        return sum(e["value"] for e in self.meter_events if e["event_name"] == event_name and e["customer"] == customer)

    def summaries(self, meter: Obj, customer: str, start: int, end: int, step: int | None) -> list[Obj]:
        """Event summaries over [start, end), one per `step` seconds (or one for the whole window), newest first."""
        buckets = [(start, end)] if step is None else [(t, min(t + step, end)) for t in range(start, end, step)]
        formula = meter["default_aggregation"]["formula"]
        data: list[Obj] = []
        for b_start, b_end in buckets:
            values = [
                e["value"]
                for e in self.meter_events
                if e["meter"] == meter["id"] and e["customer"] == customer and b_start <= e["timestamp"] < b_end
            ]
            data.append(
                {
                    "id": new_id("mtrusg", 16),
                    "object": "billing.meter_event_summary",
                    "aggregated_value": aggregate(formula, values),
                    "end_time": b_end,
                    "livemode": False,
                    "meter": meter["id"],
                    "start_time": b_start,
                }
            )
        data.reverse()
        return data
