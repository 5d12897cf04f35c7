"""Moto clients that can be shared between threads."""

from __future__ import annotations

import threading
from typing import Any


class AtomicDynamoDB:
    """A moto client whose operations are each atomic, as DynamoDB's are.

    In-process moto is not thread-safe: it evaluates a condition and then writes in plain Python, so two threads can
    both pass the same condition, and 50 concurrent calls can raise ``dictionary changed size during iteration``.
    Real DynamoDB serializes writes to an item. One process-wide lock around each call gives that per-request
    atomicity; the races between our own several calls stay possible, so concurrency tests still exercise them."""

    _lock = threading.RLock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return atomic
