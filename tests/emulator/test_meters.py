"""Meter events: v1 and v2 (session token + stream), dedup window, timestamp window, summaries."""

from __future__ import annotations

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import make_client

DAY = 86400


@pytest.fixture
def customer(client: stripe.StripeClient) -> str:
    return client.v1.customers.create({"email": "m@example.com"}).id


def send(client: stripe.StripeClient, customer: str, value: int, identifier: str, ts: int | None = None) -> None:
    params: dict = {
        "event_name": "api_tokens",
        "payload": {"stripe_customer_id": customer, "value": str(value)},
        "identifier": identifier,
    }
    if ts is not None:
        params["timestamp"] = ts
    client.v1.billing.meter_events.create(params)


def test_identifier_dedup_within_24h_and_not_after(
    emu: StripeEmulator, client: stripe.StripeClient, customer: str
) -> None:
    # Given an accepted event
    send(client, customer, 5, "usage-1")
    # When the same identifier is sent again within 24 h
    with pytest.raises(stripe.InvalidRequestError) as dup:
        send(client, customer, 5, "usage-1")
    # Then it is a 400 duplicate and the total is unchanged
    assert dup.value.http_status == 400
    assert dup.value.code == "duplicate_meter_event"
    assert emu.meter_total("api_tokens", customer) == 5
    # When the clock passes the 24 h window
    emu.clock.advance(DAY + 1)
    send(client, customer, 5, "usage-1")
    # Then it is accepted again
    assert emu.meter_total("api_tokens", customer) == 10


def test_timestamp_window(emu: StripeEmulator, client: stripe.StripeClient, customer: str) -> None:
    now = emu.clock.now_int()
    send(client, customer, 1, "ok-old", ts=now - 35 * DAY + 60)
    send(client, customer, 1, "ok-future", ts=now + 240)
    with pytest.raises(stripe.InvalidRequestError) as old:
        send(client, customer, 1, "too-old", ts=now - 35 * DAY - 60)
    assert old.value.param == "timestamp"
    with pytest.raises(stripe.InvalidRequestError) as future:
        send(client, customer, 1, "too-new", ts=now + 400)
    assert future.value.param == "timestamp"
    assert emu.meter_total("api_tokens", customer) == 2


def test_v1_unknown_customer_is_accepted_and_reported_later_but_unknown_event_name_is_a_400(
    emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    # Given v1 meter events: one for a customer Stripe does not know
    # When it is sent
    echo = client.v1.billing.meter_events.create(
        {"event_name": "api_tokens", "payload": {"stripe_customer_id": "cus_missing", "value": "1"}, "identifier": "x1"}
    )
    # Then (like Stripe, which validates customers asynchronously) the call succeeds but nothing is aggregated
    assert echo.identifier == "x1"
    assert emu.meter_total("api_tokens", "cus_missing") == 0
    assert emu.billing.pending_meter_errors["mtr_api_tokens"][0]["code"] == "meter_event_customer_not_found"
    # And an unknown event name is still answered synchronously with 400 no_meter
    with pytest.raises(stripe.InvalidRequestError) as name:
        client.v1.billing.meter_events.create(
            {"event_name": "nope", "payload": {"stripe_customer_id": "cus_missing", "value": "1"}}
        )
    assert name.value.code == "no_meter"


def test_event_summaries_equal_the_sum_sent(emu: StripeEmulator, client: stripe.StripeClient, customer: str) -> None:
    start = emu.clock.now_int() - 3600
    values = [3, 7, 11, 19]
    for i, v in enumerate(values):
        send(client, customer, v, f"sum-{i}")
    meter = next(m for m in client.v1.billing.meters.list().data if m.event_name == "api_tokens")
    assert meter.id == "mtr_api_tokens"
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.id, {"customer": customer, "start_time": start, "end_time": emu.clock.now_int() + 60}
    )
    assert summaries.data[0].aggregated_value == sum(values)
    assert summaries.data[0].object == "billing.meter_event_summary"


def test_v2_session_token_and_stream(emu: StripeEmulator, client: stripe.StripeClient, customer: str) -> None:
    # Given a meter event session
    session = client.v2.billing.meter_event_session.create()
    assert session.authentication_token
    # When streaming events with the session token on the meter_events address
    stream = make_client(emu.url, key=session.authentication_token)
    events = [
        {"event_name": "api_tokens", "payload": {"stripe_customer_id": customer, "value": "4"}, "identifier": f"s-{i}"}
        for i in range(100)
    ]
    stream.v2.billing.meter_event_stream.create({"events": events})
    # Then all are aggregated; a duplicate in a later stream is accepted but dropped (documented v2 behaviour)
    stream.v2.billing.meter_event_stream.create({"events": events[:1]})
    assert emu.meter_total("api_tokens", customer) == 400
    assert emu.billing.meter_rejections[-1]["identifier"] == "s-0"
    # And more than 100 events is a 400
    with pytest.raises(stripe.InvalidRequestError):
        stream.v2.billing.meter_event_stream.create({"events": events + events[:1]})
    # And the secret key is not a session token
    with pytest.raises(stripe.AuthenticationError):
        client.v2.billing.meter_event_stream.create({"events": events[:1]})
    # And the token expires after 15 minutes
    emu.clock.advance(15 * 60 + 1)
    with pytest.raises(stripe.AuthenticationError):
        stream.v2.billing.meter_event_stream.create({"events": events[:1]})


def test_v2_stream_timestamp_window_rejects_whole_request(
    emu: StripeEmulator, client: stripe.StripeClient, customer: str
) -> None:
    token = client.v2.billing.meter_event_session.create().authentication_token
    stream = make_client(emu.url, key=token)
    ok = {"event_name": "api_tokens", "payload": {"stripe_customer_id": customer, "value": "1"}, "identifier": "a"}
    old = {**ok, "identifier": "b", "timestamp": "2020-01-01T00:00:00.000Z"}
    with pytest.raises(stripe.InvalidRequestError):
        stream.v2.billing.meter_event_stream.create({"events": [ok, old]})
    assert emu.meter_total("api_tokens", customer) == 0


def test_a_cancel_adjustment_stops_an_event_counting_within_24h_only(
    emu: StripeEmulator, client: stripe.StripeClient, customer: str
) -> None:
    # Given two accepted events
    send(client, customer, 5, "adj-1")
    send(client, customer, 7, "adj-2")
    # When one is canceled by identifier
    adjustment = client.v1.billing.meter_event_adjustments.create(
        {"event_name": "api_tokens", "type": "cancel", "cancel": {"identifier": "adj-1"}}
    )
    # Then it no longer counts, and the adjustment has Stripe's shape
    assert emu.meter_total("api_tokens", customer) == 7
    assert adjustment.object == "billing.meter_event_adjustment"
    assert adjustment.cancel.identifier == "adj-1"
    # And its identifier stays used (stricter than documented: a resend cannot bring it back)
    with pytest.raises(stripe.InvalidRequestError) as dup:
        send(client, customer, 5, "adj-1")
    assert dup.value.code == "duplicate_meter_event"
    # And an unknown identifier, or an event older than 24 h, cannot be canceled
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meter_event_adjustments.create(
            {"event_name": "api_tokens", "type": "cancel", "cancel": {"identifier": "nope"}}
        )
    emu.clock.advance(DAY + 1)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meter_event_adjustments.create(
            {"event_name": "api_tokens", "type": "cancel", "cancel": {"identifier": "adj-2"}}
        )
    assert emu.meter_total("api_tokens", customer) == 7
