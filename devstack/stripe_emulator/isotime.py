"""ISO-8601 timestamps as Stripe's v2 API writes them (milliseconds, `Z`)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"
