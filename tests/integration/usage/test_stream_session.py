"""The v2 meter event session: one token reused until shortly before it expires, renewed early, and renewed once
when Stripe answers 401 (the token expired on Stripe's clock first)."""

from __future__ import annotations

import time

from tollgate.adapters.stripe_api.meter_transport import SESSION_REFRESH_MARGIN_SECONDS, StreamTransport
from tollgate.ports.stripe import MeterEvent, SendStatus

from .conftest import UsageStack

SESSION_PATH = "/v2/billing/meter_event_session"
TOKEN_TTL_SECONDS = 15 * 60


def events(stack: UsageStack, prefix: str, count: int) -> list[MeterEvent]:
    customer = stack.customer(f"user-{prefix}")
    ts = int(time.time()) - 30
    return [MeterEvent(f"tg1_{prefix}{i}_{'0' * 12}", "api_tokens", customer, 1, ts) for i in range(count)]


def test_the_session_token_is_reused_then_renewed_shortly_before_it_expires(stack: UsageStack) -> None:
    # Given a transport on a clock we move
    now = [time.time()]
    transport = StreamTransport(lambda: stack.client, clock=lambda: now[0])
    # When three batches go out inside the token's life
    for batch in range(3):
        transport.send(events(stack, f"a{batch}x", 2))
    # Then one session served them all
    assert len(stack.emu.requests_to(SESSION_PATH)) == 1
    # When the token is within the refresh margin of its expiry
    now[0] += TOKEN_TTL_SECONDS - SESSION_REFRESH_MARGIN_SECONDS + 1
    results = transport.send(events(stack, "b", 2))
    # Then a new session was made before the request, which was accepted without a 401
    assert len(stack.emu.requests_to(SESSION_PATH)) == 2
    assert {r.status for r in results.values()} == {SendStatus.ACCEPTED}
    assert all(r["status"] == 200 for r in stack.stream_requests())


def test_a_401_for_an_expired_session_renews_it_once_and_the_events_are_accepted(stack: UsageStack) -> None:
    # Given a cached token that Stripe's clock has expired while ours has not
    transport = StreamTransport(lambda: stack.client)
    transport.send(events(stack, "c", 1))
    stack.emu.clock.advance(TOKEN_TTL_SECONDS + 1)
    # When the next batch goes out
    results = transport.send(events(stack, "d", 3))
    # Then the 401 renewed the session and the batch was recorded
    assert {r.status for r in results.values()} == {SendStatus.ACCEPTED}
    assert len(stack.emu.requests_to(SESSION_PATH)) == 2
    assert [r["status"] for r in stack.stream_requests()] == [200, 401, 200]
    assert sum(1 for e in stack.emu.billing.meter_events if e["identifier"].startswith("tg1_d")) == 3
