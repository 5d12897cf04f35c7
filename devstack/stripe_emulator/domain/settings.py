"""The billing engine's knobs (Stripe dashboard settings), changeable at runtime through `/_emulator/settings`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .periods import DAY

DUNNING_END_ACTIONS = ("unpaid", "canceled", "past_due")


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _end_action(value: Any) -> str:
    if value not in DUNNING_END_ACTIONS:
        raise ValueError(f"dunning_end_action must be one of {DUNNING_END_ACTIONS}")
    return str(value)


def _days_as_seconds(value: Any) -> int:
    return int(float(value) * DAY)


# setting name -> (attribute, parser); the parser raises ValueError (or TypeError) for a bad value.
_KNOBS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "dunning_end_action": ("dunning_end_action", _end_action),
    "dunning_mark_uncollectible": ("dunning_mark_uncollectible", _flag),
    "invoice_upcoming_days": ("invoice_upcoming_days", int),
    "dunning_retries": ("dunning_retries", int),
    "dunning_retry_interval_days": ("dunning_retry_interval", _days_as_seconds),
    "async_payment_delay_days": ("async_payment_delay_days", float),
    "synchronous_meter_errors": ("synchronous_meter_errors", _flag),
    "meter_error_report_delay_seconds": ("meter_error_report_delay", float),
}


class Settings:
    """Knob values; `reset()` restores the constructor's."""

    def __init__(
        self,
        *,
        dunning_retries: int = 3,
        dunning_retry_interval_days: int = 3,
        meter_error_report_delay_seconds: float = 60.0,
        invoice_upcoming_days: int = 7,
        dunning_end_action: str = "unpaid",
        dunning_mark_uncollectible: bool = False,
        async_payment_delay_days: float = 4,
        synchronous_meter_errors: bool = False,
    ) -> None:
        self.dunning_retries = dunning_retries
        self.dunning_retry_interval = dunning_retry_interval_days * DAY
        self.meter_error_report_delay = meter_error_report_delay_seconds
        self.invoice_upcoming_days = invoice_upcoming_days
        self.dunning_end_action = dunning_end_action
        self.dunning_mark_uncollectible = dunning_mark_uncollectible
        self.async_payment_delay_days = async_payment_delay_days
        # Not Stripe's behaviour: answer 400 for meter errors Stripe reports asynchronously (for controls).
        self.synchronous_meter_errors = synchronous_meter_errors
        self._defaults = self.snapshot()
        self.configure(**self._defaults)

    def snapshot(self) -> dict[str, Any]:
        return {
            "invoice_upcoming_days": self.invoice_upcoming_days,
            "dunning_end_action": self.dunning_end_action,
            "dunning_mark_uncollectible": self.dunning_mark_uncollectible,
            "dunning_retries": self.dunning_retries,
            "dunning_retry_interval_days": self.dunning_retry_interval / DAY,
            "async_payment_delay_days": self.async_payment_delay_days,
            "meter_error_report_delay_seconds": self.meter_error_report_delay,
            "synchronous_meter_errors": self.synchronous_meter_errors,
        }

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs; unknown names or values raise ValueError (earlier knobs of the call stay changed)."""
        for name, value in knobs.items():
            if name not in _KNOBS:
                raise ValueError(f"unknown setting: {name}")
            attribute, parse = _KNOBS[name]
            setattr(self, attribute, parse(value))
        return self.snapshot()

    def reset(self) -> None:
        self.configure(**self._defaults)
