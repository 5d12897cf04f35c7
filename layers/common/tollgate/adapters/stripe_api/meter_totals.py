"""What Stripe's meters counted: the active meters, and a customer's billing meter event summaries per day."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tollgate.adapters.stripe_client import stripe_errors
from tollgate.ports.stripe import MeterView

if TYPE_CHECKING:
    import stripe

PAGE_SIZE = 100


class SdkMeterTotals:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def active_meters(self) -> list[MeterView]:
        meters: list[MeterView] = []
        params: dict[str, Any] = {"status": "active", "limit": PAGE_SIZE}
        while True:
            with stripe_errors("billing.meters.list"):
                page = self._client().v1.billing.meters.list(params)  # type: ignore[arg-type]
            meters += [MeterView(m.id, m.event_name, m.default_aggregation.formula) for m in page.data]
            if not page.has_more or not page.data:
                return meters
            params = {**params, "starting_after": page.data[-1].id}

    def daily_totals(self, meter_id: str, customer_id: str, start: int, end: int) -> dict[int, int]:
        totals: dict[int, int] = {}
        params: dict[str, Any] = {
            "customer": customer_id,
            "start_time": start,
            "end_time": end,
            "value_grouping_window": "day",
            "limit": PAGE_SIZE,
        }
        while True:
            with stripe_errors("billing.meters.event_summaries.list"):
                page = self._client().v1.billing.meters.event_summaries.list(meter_id, params)  # type: ignore[arg-type]
            for summary in page.data:
                if summary.aggregated_value:
                    totals[int(summary.start_time)] = round(summary.aggregated_value)
            if not page.has_more or not page.data:
                return totals
            params = {**params, "starting_after": page.data[-1].id}
