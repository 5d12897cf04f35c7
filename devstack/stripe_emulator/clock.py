"""The emulator clock: wall time plus an offset that tests advance.

Business time (subscription periods, meter windows, idempotency expiry) reads this clock; webhook signature
timestamps use wall time so receivers' tolerance checks still pass after the clock is advanced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """A monotonic-by-construction offset clock; `advance` runs registered tick listeners."""

    def __init__(self, frozen: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen = frozen
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        with self._lock:
            if self._frozen is not None:
                return self._frozen + self._offset
            return time.time() + self._offset

    def now_int(self) -> int:
        return int(self.now())

    def on_advance(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def advance(self, seconds: float) -> float:
        """Move time forward and let the billing engine process everything now due."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        for listener in list(self._listeners):
            listener()
        return self.now()

    def advance_to(self, timestamp: float) -> float:
        delta = timestamp - self.now()
        return self.advance(max(0.0, delta))

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
