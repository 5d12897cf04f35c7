"""Asynchronous meter validation: invalid events are accepted, then reported through thin events."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import StripeEmulator

from .conftest import Hooks, make_client


def stream_client(emu: StripeEmulator, client: stripe.StripeClient) -> stripe.StripeClient:
    return make_client(emu.url, key=client.v2.billing.meter_event_session.create().authentication_token)


def event(customer: str | None, value: str = "1", identifier: str = "id", name: str = "api_tokens") -> dict:
    payload = {"value": value}
    if customer is not None:
        payload["stripe_customer_id"] = customer
    return {"event_name": name, "payload": payload, "identifier": identifier}


def test_invalid_stream_events_are_accepted_then_reported_per_meter(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    # Given a real customer and a stream mixing valid and invalid events
    good = client.v1.customers.create({"email": "u@example.com"}).id
    stream = stream_client(emu, client)
    events = [
        event(good, "5", "ok-1"),
        event("cus_ghost", "2", "ghost-1"),
        event("cus_ghost", "3", "ghost-2"),
        event(None, "1", "nocus-1"),
        event(good, "lots", "badval-1"),
        event(good, "1", "nometer-1", name="no_such_meter"),
    ]
    # When the stream is sent
    stream.v2.billing.meter_event_stream.create({"events": events})
    # Then the call succeeded, only the valid event counts, and no report exists yet
    assert emu.meter_total("api_tokens", good) == 5
    assert [n.type for n in hooks.thin_notes() if n.type.startswith("v1.billing")] == []
    # When the validation window (60 s on the emulator clock) passes
    emu.clock.advance(61)
    # Then one signed thin error report arrives for the meter, plus a no_meter_found for the unknown name
    notes = [n for n in hooks.thin_notes() if n.type.startswith("v1.billing.meter")]
    assert sorted(n.type for n in notes) == [
        "v1.billing.meter.error_report_triggered",
        "v1.billing.meter.no_meter_found",
    ]
    report_note = next(n for n in notes if n.type == "v1.billing.meter.error_report_triggered")
    assert report_note.related_object.id == "mtr_api_tokens"
    assert report_note.related_object.type == "billing.meter"
    assert report_note.fetch_related_object().event_name == "api_tokens"
    # And the full event (GET /v2/core/events/{id}) has the SDK's typed shape
    full = report_note.fetch_event()
    assert isinstance(full, stripe.events.V1BillingMeterErrorReportTriggeredEvent)
    reason = full.data.reason
    assert reason.error_count == 4
    by_code = {t.code: t for t in reason.error_types}
    assert set(by_code) == {
        "meter_event_customer_not_found",
        "meter_event_no_customer_defined",
        "meter_event_invalid_value",
    }
    ghost = by_code["meter_event_customer_not_found"]
    assert ghost.error_count == 2
    assert [s.request.identifier for s in ghost.sample_errors] == ["ghost-1", "ghost-2"]
    assert "cus_ghost" in ghost.sample_errors[0].error_message
    assert by_code["meter_event_invalid_value"].sample_errors[0].request.identifier == "badval-1"
    assert full.data.validation_start <= full.data.validation_end
    assert "4 invalid meter events" in full.data.developer_message_summary
    no_meter = next(n for n in notes if n.type == "v1.billing.meter.no_meter_found").fetch_event()
    assert no_meter.data.reason.error_types[0].code == "no_meter"
    assert no_meter.data.reason.error_types[0].sample_errors[0].request.identifier == "nometer-1"
    # And a second clock advance does not report the same errors again
    emu.clock.advance(120)
    assert len([n for n in hooks.thin_notes() if n.type.startswith("v1.billing.meter")]) == 2


def test_archived_meter_and_v1_unknown_customer_are_reported(
    emu: StripeEmulator, client: stripe.StripeClient, hooks: Hooks
) -> None:
    # Given an archived (deactivated) meter and a v1 event for an unknown customer on an active meter
    other = client.v1.billing.meters.create(
        {"display_name": "Seats", "event_name": "seats", "default_aggregation": {"formula": "sum"}}
    )
    assert client.v1.billing.meters.deactivate(other.id).status == "inactive"
    client.v1.billing.meter_events.create(
        {
            "event_name": "api_tokens",
            "payload": {"stripe_customer_id": "cus_nobody", "value": "1"},
            "identifier": "v1-x",
        }
    )
    cus = client.v1.customers.create({"email": "a@example.com"}).id
    stream_client(emu, client).v2.billing.meter_event_stream.create({"events": [event(cus, "1", "arch-1", "seats")]})
    # When the reports are flushed through the control endpoint
    flushed = requests.post(emu.url + "/_emulator/meter_errors/flush", timeout=5).json()["data"]
    # Then each meter got its own report with the right code
    codes = {
        e["related_object"]["id"]: e["data"]["reason"]["error_types"][0]["code"]
        for e in flushed
        if e["related_object"] is not None
    }
    assert codes == {"mtr_api_tokens": "meter_event_customer_not_found", other.id: "archived_meter"}
    assert {n.related_object.id for n in hooks.thin_notes()} >= {"mtr_api_tokens", other.id}
    # And nothing was aggregated
    assert emu.meter_total("seats", cus) == 0


def test_naive_synchronous_expectation_would_miss_the_error(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Control: a caller that treats "the stream call succeeded" as "the usage was recorded" is wrong here
    stream = stream_client(emu, client)
    stream.v2.billing.meter_event_stream.create({"events": [event("cus_ghost", "7", "g-7")]})
    assert emu.meter_total("api_tokens", "cus_ghost") == 0
    assert emu.billing.pending_meter_errors["mtr_api_tokens"][0]["identifier"] == "g-7"


def test_synchronous_meter_errors_knob_restores_the_400(emu: StripeEmulator, client: stripe.StripeClient) -> None:
    # Given the non-Stripe knob (for controls) switched on
    emu.billing.configure(synchronous_meter_errors=True)
    stream = stream_client(emu, client)
    # When an unknown customer is streamed or sent through v1
    with pytest.raises(stripe.InvalidRequestError) as v2_err:
        stream.v2.billing.meter_event_stream.create({"events": [event("cus_ghost", "1", "s-1")]})
    with pytest.raises(stripe.InvalidRequestError) as v1_err:
        client.v1.billing.meter_events.create(event("cus_ghost", "1", "s-2"))
    # Then both fail synchronously and nothing is queued for a report
    assert v2_err.value.code == v1_err.value.code == "meter_event_customer_not_found"
    assert emu.billing.pending_meter_errors == {}
