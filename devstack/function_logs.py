"""What ``make dev`` shows of the functions' logs: one readable line per record, at the chosen level.

The functions log as they do in Lambda (Powertools JSON, one object per line, plus EMF metric objects). A terminal
wants ``12:00:01 webhook  INFO  event applied  event_id=evt_... event_type=invoice.paid``: the level, the message
and the record's own keys, without the keys every record carries (function name, ARN, request id, ...). Metric
objects are dropped unless asked for (``DEVSTACK_METRICS=1``); anything that is not JSON (a traceback) passes
through as it is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

#: Keys Powertools adds to every record: noise in a terminal (all of them are in the JSON when DEBUG is asked for).
CONTEXT_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
    }
)
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
MAX_VALUE_CHARS = 80


@dataclass(frozen=True)
class LogView:
    level: int = logging.INFO
    show_metrics: bool = False

    @classmethod
    def named(cls, level: str, *, show_metrics: bool = False) -> LogView:
        if level.upper() not in LEVELS:
            raise ValueError(f"DEVSTACK_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
        return cls(LEVELS[level.upper()], show_metrics)

    def render(self, line: str) -> tuple[int, str] | None:
        """(level, text) to log for one line a function wrote, or None to drop it."""
        text = line.rstrip("\n")
        record = _json_object(text)
        if record is None:
            return (logging.INFO, text) if text.strip() else None
        if "_aws" in record:  # an EMF metric object
            return (logging.INFO, _metrics_line(record)) if self.show_metrics else None
        level = LEVELS.get(str(record.get("level", "INFO")).upper(), logging.INFO)
        if level < self.level:
            return None
        if self.level <= logging.DEBUG:
            return level, text  # asked for everything: the record as Lambda writes it
        extras = " ".join(f"{k}={_short(v)}" for k, v in record.items() if k not in CONTEXT_KEYS)
        return level, f"{logging.getLevelName(level):<7} {record.get('message', '')}  {extras}".rstrip()


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _metrics_line(record: dict[str, Any]) -> str:
    names = [m["Name"] for d in record["_aws"].get("CloudWatchMetrics", []) for m in d.get("Metrics", [])]
    return "METRICS " + " ".join(f"{n}={_short(record.get(n))}" for n in names)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
