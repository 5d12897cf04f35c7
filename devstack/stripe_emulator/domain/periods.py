"""Billing periods: calendar arithmetic like Stripe's billing cycles."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from devstack.stripe_emulator.store import Obj

DAY = 86400


def add_interval(ts: int, interval: str, count: int = 1) -> int:
    """`ts` moved by `count` intervals (month-end days clamp, like Stripe's)."""
    dt = datetime.fromtimestamp(ts, UTC)
    if interval == "day":
        return ts + count * DAY
    if interval == "week":
        return ts + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    month_index = dt.month - 1 + months
    year = dt.year + month_index // 12
    month = month_index % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp())


def period_end(start: int, price: Obj) -> int:
    """The end of a period of `price` starting at `start` (monthly when the price is not recurring)."""
    rec = price.get("recurring") or {"interval": "month"}
    return add_interval(start, rec["interval"], rec.get("interval_count", 1))
