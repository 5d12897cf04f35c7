"""v2 meter event sessions: short-lived tokens that authenticate meter event streams."""

from __future__ import annotations

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import StripeError
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.schedule import BusinessTime

SESSION_TOKEN_TTL = 15 * 60


class MeterSessions:
    def __init__(self, clock: Clock, time: BusinessTime) -> None:
        self.clock = clock
        self.time = time
        self.sessions: dict[str, float] = {}

    def reset(self) -> None:
        self.sessions.clear()

    def new_token(self) -> tuple[str, int]:
        token = "mest_test_" + new_id("x", 40)[2:]
        expires = self.time.now() + SESSION_TOKEN_TTL
        self.sessions[token] = expires
        return token, expires

    def check(self, token: str) -> None:
        """401 for an unknown or expired token (the stream's Bearer credential)."""
        expires = self.sessions.get(token)
        if expires is None:
            raise StripeError(401, "Invalid meter event session token.", code="api_key_invalid")
        if self.clock.now() >= expires:
            raise StripeError(
                401,
                "The meter event session has expired: create a new one.",
                code="billing_meter_event_session_expired",
            )
