"""The emulator clock: wall time plus an offset that tests advance.

Everything the emulator stamps reads this clock: business time (subscription periods, meter windows, idempotency
expiry), the ``Date`` header and webhook signature timestamps, as Stripe's own clock does. The local stack shares
its offset with the product's functions (a clock file), so advancing it advances the whole stack.
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
        self._watchers: list[Callable[[float], None]] = []

    def now(self) -> float:
        with self._lock:
            if self._frozen is not None:
                return self._frozen + self._offset
            return time.time() + self._offset

    @property
    def offset(self) -> float:
        """Seconds this clock runs ahead of the wall clock (what the local stack shares with its functions)."""
        with self._lock:
            return self._offset if self._frozen is None else self._frozen + self._offset - time.time()

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
        # The rest of the stack first: the events the engine emits now are handled on the new time.
        self._changed()
        for listener in list(self._listeners):
            listener()
        return self.now()

    def advance_to(self, timestamp: float) -> float:
        delta = timestamp - self.now()
        return self.advance(max(0.0, delta))

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
        self._changed()

    def on_change(self, listener: Callable[[float], None]) -> None:
        """Called with the new offset whenever it changes (advance or reset), before the billing engine runs."""
        self._watchers.append(listener)

    def _changed(self) -> None:
        offset = self.offset
        for watcher in list(self._watchers):
            watcher(offset)
