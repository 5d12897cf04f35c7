"""One local stack per checkout: ``make dev`` holds an exclusive lock on ``.devstack/devstack.lock`` while it runs.

The lock is an ``flock`` on the open file, so the kernel releases it when the holder dies, however it dies: a lock
file left by a killed stack is simply taken over. The file also says who holds it (pid, ports, start time), so a
second ``make dev`` can name the running one instead of colliding with its ports or its ``endpoints.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


class AlreadyRunning(Exception):
    """Another live process holds the checkout's lock."""

    def __init__(self, holder: dict[str, Any], lock_file: Path) -> None:
        self.holder = holder
        self.lock_file = lock_file
        super().__init__(describe(holder, lock_file))


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(holder: dict[str, Any], lock_file: Path) -> str:
    pid = holder.get("pid", "?")
    ports = holder.get("ports") or {}
    where = ", ".join(f"{name} port {port}" for name, port in ports.items()) or "ports unknown"
    started = holder.get("started_at")
    since = time.strftime(" since %H:%M:%S UTC", time.gmtime(started)) if isinstance(started, (int, float)) else ""
    state = "" if _alive(pid) else " (that process is gone; its leftover workers still hold the lock)"
    return (
        f"another local stack is already running from this checkout: pid {pid}{since}, {where}{state}. "
        f"Use that one, or stop it first (Ctrl-C in its terminal, or `kill {pid}`); "
        f"its state ({lock_file.parent}) is left alone."
    )


@dataclass
class InstanceLock:
    """Held from `acquire` until `release` (or the process's death)."""

    path: Path
    _file: IO[str] | None = None
    _started_at: int = 0

    @classmethod
    def acquire(cls, path: Path, ports: dict[str, int]) -> InstanceLock:
        """Take the checkout's lock or raise AlreadyRunning naming the holder; writes our pid and ports."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")  # never truncates a holder's facts before we own the lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            handle.close()
            raise AlreadyRunning(holder if isinstance(holder, dict) else {}, path) from None
        lock = cls(path, handle, int(time.time()))
        lock.update(ports)
        return lock

    def update(self, ports: dict[str, int]) -> None:
        """Record the ports actually bound (known only once the stack started, with port 0)."""
        if self._file is None:
            return
        facts = {"pid": os.getpid(), "ports": ports, "started_at": self._started_at, "cwd": os.getcwd()}
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(facts))
        self._file.flush()

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.seek(0)
            self._file.truncate()
        self._file.close()  # closing the descriptor drops the flock
        self._file = None
