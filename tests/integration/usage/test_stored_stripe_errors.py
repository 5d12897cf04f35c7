"""Stripe saves a 500 under its idempotency key and replays it for 24 h. A meter request whose key is fixed by the
usage record would therefore fail on every redelivery until SQS dead-letters the record without a reason; the
meter ``identifier`` already deduplicates, so a redelivery must be a fresh request."""

from __future__ import annotations

import pytest

from tollgate.adapters.stripe_api.meter_transport import StreamTransport
from tollgate.services.usage_reporter import InboundRecord, UsageOutcome

from .conftest import UsageStack
from .test_reporter_on_emulator import body

METER_PATHS = {"stream": "/v2/billing/meter_event_stream", "v1": "/v1/billing/meter_events"}


@pytest.mark.parametrize("transport", ["stream", "v1"])
def test_a_stored_500_is_not_replayed_to_the_redelivered_record(stack: UsageStack, transport: str) -> None:
    # Given a customer, and Stripe answering the first meter request with a 500 it saves under the request's key
    customer = stack.customer("user-1")
    meter_transport = StreamTransport(lambda: stack.client) if transport == "stream" else stack.v1_transport()
    reporter = stack.reporter(transport=meter_transport)
    stack.emu.faults.add(METER_PATHS[transport], status=500, record=True)
    record = InboundRecord("m-1", body("use-1", "user-1", 7))

    # When the record fails once and SQS delivers it again (same usage record, a later receive)
    first = reporter.report([record])
    again = reporter.report([InboundRecord("m-1", record.body, receive_count=2)])

    # Then the first attempt is a retry and the redelivery is recorded, once
    assert first["m-1"].outcome is UsageOutcome.RETRY
    assert again["m-1"].outcome is UsageOutcome.SENT
    assert stack.emu.meter_total("api_tokens", customer) == 7
