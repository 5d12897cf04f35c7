"""Business time and the scheduler that replays every due transition, in due-time order, when the clock moves.

A jump of several months therefore produces the same event sequence as living through it: each transition runs
with business time set to the moment it was due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .clock import Clock

# A due transition: (due time, tie-break rank, action).
Task = tuple[float, int, Callable[[], None]]

# Ranks break ties between transitions due at the same instant (lower runs first).
SUBSCRIPTION_STEP = 0  # incomplete expiry, pending-update expiry, unpause, upcoming invoice, trial will end
SCHEDULED_CANCEL = 1
RENEWAL = 2  # a subscription's period end, a pricing-plan subscription's monthly renewal
PAYMENT = 3  # a dunning retry, a bank debit settling
CHECKOUT_EXPIRY = 4
METER_ERROR_REPORT = 5

MAX_STEPS = 100000


class BusinessTime:
    """ "Now" for billing objects: the clock, except while a due transition replays (then the moment it was due)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._at: int | None = None

    def now(self) -> int:
        return self._at if self._at is not None else self._clock.now_int()

    @contextmanager
    def replaying(self, at: int) -> Iterator[None]:
        self._at = at
        try:
            yield
        finally:
            self._at = None


class Scheduler:
    """Runs the due transitions that `due()` lists, earliest first, until none is due on the clock."""

    def __init__(
        self,
        lock: AbstractContextManager[Any],
        clock: Clock,
        time: BusinessTime,
        due: Callable[[], list[Task]],
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._time = time
        self._due = due

    def tick(self) -> None:
        """Called after each clock advance."""
        with self._lock:
            for _ in range(MAX_STEPS):
                task = self._next()
                if task is None or task[0] > self._clock.now():
                    return
                with self._time.replaying(int(task[0])):
                    task[2]()

    def _next(self) -> Task | None:
        tasks = self._due()
        if not tasks:
            return None
        return min(tasks, key=lambda t: (t[0], t[1]))
