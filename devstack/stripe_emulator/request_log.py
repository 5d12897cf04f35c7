"""The request log: one entry per request the emulator answered (secrets stripped), for tests and `/_emulator`."""

from __future__ import annotations

import threading
import time
from typing import Any

from .routing import DROP, Request, Response

HIDDEN_HEADERS = ("authorization", "cookie")


class RequestLog:
    """`entries` is the list itself (tests read and clear it); appends and filtered reads take the lock."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, req: Request, response: Response, started: float, fault: dict[str, Any] | None) -> None:
        headers = {k: v for k, v in req.headers.items() if k not in HIDDEN_HEADERS}
        entry = {
            "method": req.method,
            "path": req.path,
            "kind": req.kind,
            "params": req.params,
            "query": req.query,
            "headers": headers,
            "idempotency_key": req.idempotency_key,
            "stripe_version": req.headers.get("Stripe-Version"),
            "status": None if response is DROP else response.status,
            "replayed": response is not DROP and response.headers.get("Idempotent-Replayed") == "true",
            "request_id": req.request_id,
            "fault": fault,
            "time": started,
            "duration_ms": round((time.time() - started) * 1000, 2),
        }
        with self._lock:
            self.entries.append(entry)

    def select(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self.entries)
        if path is not None:
            rows = [r for r in rows if r["path"] == path]
        if method is not None:
            rows = [r for r in rows if r["method"] == method.upper()]
        return rows

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
