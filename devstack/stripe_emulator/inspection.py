"""`emu.billing`: what tests read and tune on the billing engine, its knobs and the meter ledger, in one place."""

from __future__ import annotations

from typing import Any

from .domain.meter_errors import MeterErrorReports
from .domain.meters import Meters
from .domain.settings import Settings


class BillingInspection:
    def __init__(self, settings: Settings, meters: Meters, meter_errors: MeterErrorReports) -> None:
        self._settings = settings
        self._meters = meters
        self._meter_errors = meter_errors

    def settings(self) -> dict[str, Any]:
        return self._settings.snapshot()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self._settings.configure(**knobs)

    @property
    def synchronous_meter_errors(self) -> bool:
        return self._settings.synchronous_meter_errors

    @synchronous_meter_errors.setter
    def synchronous_meter_errors(self, value: bool) -> None:
        self._settings.synchronous_meter_errors = value

    @property
    def meter_events(self) -> list[dict[str, Any]]:
        """Accepted meter events, oldest first."""
        return self._meters.meter_events

    @property
    def meter_rejections(self) -> list[dict[str, Any]]:
        return self._meters.meter_rejections

    @property
    def pending_meter_errors(self) -> dict[str | None, list[dict[str, Any]]]:
        return self._meter_errors.pending_meter_errors
