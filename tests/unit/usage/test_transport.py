"""The v2 stream transport's per-event outcomes when one request carrying many events is refused."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import stripe

from tollgate.adapters.stripe_api.meter_transport import StreamTransport
from tollgate.ports.stripe import MeterEvent, SendStatus

from .fakes import NOW


class FakeStreamClient:
    """Stripe's v2 meter endpoints: refuses a whole request when it holds an identifier Stripe already has."""

    def __init__(self, already_recorded: set[str]) -> None:
        self.already_recorded = already_recorded
        self.recorded: list[str] = []
        session = SimpleNamespace(create=self._session)
        stream = SimpleNamespace(create=self._stream)
        self.v2 = SimpleNamespace(billing=SimpleNamespace(meter_event_session=session, meter_event_stream=stream))

    def _session(self) -> Any:
        return SimpleNamespace(id="mes_1", authentication_token="token", expires_at=NOW + 900)

    def _stream(self, params: dict[str, Any], _options: dict[str, Any]) -> None:
        identifiers: Sequence[str] = [e["identifier"] for e in params["events"]]
        if self.already_recorded.intersection(identifiers):
            raise stripe.InvalidRequestError(
                "An event with this identifier already exists.",
                "identifier",
                code="duplicate_meter_event",
                http_status=400,
            )
        self.recorded.extend(identifiers)


def test_a_duplicate_refusing_a_whole_request_marks_only_that_event_done_and_records_its_siblings() -> None:
    # Given a request of three events of which Stripe already has one, refused as a whole for that one
    client = FakeStreamClient(already_recorded={"tg1_b_000000000000"})
    transport = StreamTransport(lambda: client, clock=lambda: NOW)  # type: ignore[arg-type, return-value]
    events = [MeterEvent(f"tg1_{u}_{'0' * 12}", "api_tokens", "cus_One", 1, NOW - 60) for u in "abc"]
    # When they are sent
    results = transport.send(events)
    # Then only the known one is a duplicate; the other two really reached Stripe (not marked done unsent)
    assert results["tg1_b_000000000000"].status is SendStatus.DUPLICATE
    assert client.recorded == ["tg1_a_000000000000", "tg1_c_000000000000"]
    assert {results[i].status for i in client.recorded} == {SendStatus.ACCEPTED}
