"""Fault knobs: the next N calls to a path get an error, a delay or a dropped connection.

`record=False` (default) models a failure in front of Stripe's API (load balancer, network): it is not saved
as the idempotent result, so the SDK's retry with the same Idempotency-Key can succeed. `record=True` models the
endpoint itself failing: the error becomes the key's saved result and is replayed.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Fault:
    path: str
    method: str | None = None
    count: int = 1
    status: int | None = 500
    should_retry: bool | None = None
    delay_ms: int = 0
    drop_connection: bool = False
    record: bool = False
    prefix: bool = False
    hits: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return path.startswith(self.path) if self.prefix else path == self.path


class Faults:
    """Thread-safe registry; `take` consumes one use of the first matching fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.latency_ms = 0

    def add(
        self,
        path: str,
        *,
        method: str | None = None,
        count: int = 1,
        status: int | None = 500,
        should_retry: bool | None = None,
        delay_ms: int = 0,
        drop_connection: bool = False,
        record: bool = False,
        prefix: bool = False,
    ) -> Fault:
        fault = Fault(
            path=path,
            method=method,
            count=count,
            status=status,
            should_retry=should_retry,
            delay_ms=delay_ms,
            drop_connection=drop_connection,
            record=record,
            prefix=prefix,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_from_json(self, spec: dict[str, Any]) -> Fault:
        allowed = {
            "path",
            "method",
            "count",
            "status",
            "should_retry",
            "delay_ms",
            "drop_connection",
            "record",
        }
        kwargs = {k: v for k, v in spec.items() if k in allowed and k != "path"}
        return self.add(str(spec["path"]), prefix=bool(spec.get("prefix", False)), **kwargs)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency_ms = 0

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]
