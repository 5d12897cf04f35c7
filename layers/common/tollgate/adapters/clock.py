"""The product's clock: the system clock in AWS; in the local stack, the Stripe emulator's clock.

The local stack writes the emulator's offset from the wall clock into a file (``CLOCK_OFFSET_FILE``) whenever the
emulator's clock moves, so advancing Stripe's time advances every function's: grace periods, trial ends, usage
timestamp windows, rate-limit windows, lease expiry and TTLs all follow it, as Stripe's test clocks intend.
"""

from __future__ import annotations

import os
import threading
import time


class OffsetFileClock:
    """Wall time plus the offset the file holds (0 while it is missing or unreadable); re-read when it changes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset()

    def offset(self) -> float:
        try:
            status = os.stat(self._path)
        except OSError:
            return 0.0
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    with open(self._path, encoding="ascii") as file:
                        self._offset = float(file.read().strip() or 0)
                except (OSError, ValueError):
                    return self._offset  # mid-write: keep the last good offset, read again next time
                self._stamp = stamp
            return self._offset
