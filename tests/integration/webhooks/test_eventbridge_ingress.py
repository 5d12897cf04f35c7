"""Stripe events through Amazon EventBridge (partner bus -> rule -> SQS -> functions/stripe_events): the same
processing as the webhook after a trust check on the envelope's partner source, on moto with real-shaped
envelopes."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.integration.webhooks.harness import Harness, build_harness, ledger_item, load_event
from tests.integration.webhooks.test_webhook_processing import stripe_has_pricing_plan_subscription
from tests.support.events import RECORDED_PARTNER_SOURCE, FakeLambdaContext, eventbridge_envelope, sqs_event
from tests.support.template import table_definition
from tollgate import errors
from tollgate.observability import metrics
from tollgate.services.stripe_event_bridge import BridgedMessage, BridgedOutcome, StripeEventBridge


@pytest.fixture
def h(billing_table: str) -> Harness:
    return build_harness(boto3.client("dynamodb"), billing_table)


def bridge_for(h: Harness) -> StripeEventBridge:
    return StripeEventBridge(webhook=h.service, trusted_sources=frozenset({RECORDED_PARTNER_SOURCE}), clock=h.clock)


def bridged(bridge: StripeEventBridge, h: Harness, *envelopes: dict[str, Any]) -> list[BridgedOutcome]:
    """The envelopes as the queue hands them to the function (one SQS record each), then the stream published."""
    records = sqs_event([json.dumps(e) for e in envelopes])["Records"]
    try:
        return bridge.receive([BridgedMessage(r["messageId"], r["body"]) for r in records], 9000)
    finally:
        h.publish()


def refused_count() -> float:
    entry = metrics.metric_set.get("StripeEventSourceRefused")
    return sum(entry["Value"]) if entry else 0.0


def test_an_event_from_the_partner_source_is_applied_like_a_webhook_delivery(h: Harness) -> None:
    # Given a real-shaped customer.subscription.updated inside Stripe's EventBridge envelope
    envelope = eventbridge_envelope(load_event("customer.subscription.updated"))
    # When the Stripe events function receives it from the queue
    (outcome,) = bridged(bridge_for(h), h, envelope)
    # Then it is applied by the webhook's own processing: projection, user link, domain event
    assert (outcome.result, outcome.retry) == ("applied", False)
    state = h.repository.current_for_customer("cus_TestProjection01")
    assert (state.status, state.price_id, state.quantity) == ("active", "price_1TestPro", 1)
    assert h.directory.links == {"cus_TestProjection01": "user-123"}
    assert h.bus.names() == ["subscription.activated"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "aws.partner/stripe.com/ed_test_SomeoneElsesDestination"),  # Stripe, but not this stack's
        ("source", "com.example.billing"),  # a custom source on the bus
        ("source", "aws.partner/stripe.comevil/ed_x"),  # a look-alike prefix
        ("detail-type", "invoice.paid"),  # an envelope Stripe did not write
    ],
)
def test_an_envelope_not_from_the_configured_partner_source_is_refused_before_processing(
    h: Harness, billing_table: str, field: str, value: str
) -> None:
    # Given an envelope that differs from Stripe's only in one trusted field
    event = load_event("customer.subscription.updated")
    envelope = eventbridge_envelope(event)
    envelope[field] = value
    metrics.clear_metrics()
    # When it reaches the Stripe events function
    (outcome,) = bridged(bridge_for(h), h, envelope)
    # Then it is refused and acknowledged (never retried), counted, and nothing was read or written
    assert (outcome.result, outcome.retry) == ("refused", False)
    assert refused_count() == 1
    assert h.repository.applied == []
    assert h.bus.events == []
    with pytest.raises(KeyError):
        ledger_item(billing_table, event["id"])
    # Control: the same event from the configured partner source is applied
    metrics.clear_metrics()
    (trusted,) = bridged(bridge_for(h), h, eventbridge_envelope(event))
    assert trusted.result == "applied"
    assert refused_count() == 0


def test_with_no_partner_source_configured_everything_is_refused(h: Harness) -> None:
    # Given the function of a stack whose provisioning created no EventBridge destination (webhook mode)
    bridge = StripeEventBridge(webhook=h.service, trusted_sources=frozenset(), clock=h.clock)
    # When an envelope arrives anyway, then it is refused: the check fails closed
    (outcome,) = bridged(bridge, h, eventbridge_envelope(load_event("customer.subscription.updated")))
    assert outcome.result == "refused"
    assert h.repository.applied == []


def test_a_body_that_is_not_an_envelope_is_refused(h: Harness) -> None:
    records = [BridgedMessage("m-1", "not json"), BridgedMessage("m-2", json.dumps([1, 2]))]
    assert [o.result for o in bridge_for(h).receive(records, 9000)] == ["refused", "refused"]


def test_a_retryable_failure_is_returned_for_sqs_to_redeliver_and_a_redelivery_applies_once(h: Harness) -> None:
    # Given a thin event (the handler fetches the current object) while Stripe is unavailable
    event = load_event("v2.billing.pricing_plan_subscription.servicing_activated")
    h.stripe.fail_with = errors.UpstreamUnavailable()
    bridge = bridge_for(h)
    (first,) = bridged(bridge, h, eventbridge_envelope(event))
    # Then the record is reported as a batch item failure (SQS delivers it again; the DLQ after maxReceiveCount)
    assert first.retry is True
    assert h.repository.applied == []
    # When Stripe recovers and SQS redelivers it twice (at-least-once)
    h.stripe.fail_with = None
    stripe_has_pricing_plan_subscription(h)
    outcomes = [bridged(bridge, h, eventbridge_envelope(event))[0] for _ in range(2)]
    # Then it is applied once
    assert [o.result for o in outcomes] == ["applied", "duplicate"]


def test_during_a_migration_an_event_on_both_paths_is_applied_once(h: Harness) -> None:
    # Given StripeEventIngress=both: Stripe sends each event to the webhook endpoint and to the partner source,
    # and both paths share the one event ledger and projection
    event = load_event("customer.subscription.updated")
    # When it arrives on the webhook first and on EventBridge second (and the other way round for a second event)
    over_webhook = h.deliver(event)
    (over_bridge,) = bridged(bridge_for(h), h, eventbridge_envelope(event))
    other = load_event("invoice.payment_failed")
    (other_bridge,) = bridged(bridge_for(h), h, eventbridge_envelope(other))
    other_webhook = h.deliver(other)
    # Then each was applied once, and its domain events published once
    assert (over_webhook.result, over_bridge.result) == ("applied", "duplicate")
    assert (other_bridge.result, other_webhook.result) == ("applied", "duplicate")
    assert len(h.repository.applied) == len(set(h.repository.applied))
    assert sorted(h.bus.names()) == sorted(set(h.bus.names()))


def test_control_two_ledgers_apply_an_event_that_arrives_on_both_paths_twice(billing_table: str) -> None:
    # Given the naive migration: the EventBridge path stood up beside the webhook with its own table (own ledger)
    client = boto3.client("dynamodb")
    second_table = billing_table + "-eventbridge"
    client.create_table(TableName=second_table, **table_definition())
    webhook_side, bridge_side = build_harness(client, billing_table), build_harness(client, second_table)
    event = load_event("customer.subscription.updated")
    # When the same event arrives on both paths
    over_webhook = webhook_side.deliver(event)
    (over_bridge,) = bridged(bridge_for(bridge_side), bridge_side, eventbridge_envelope(event))
    # Then it is applied twice, and its domain event published twice: what one ledger prevents
    assert (over_webhook.result, over_bridge.result) == ("applied", "applied")
    assert webhook_side.bus.names() + bridge_side.bus.names() == ["subscription.activated"] * 2


def test_the_function_answers_a_partial_batch_response(
    h: Harness, billing_table: str, fresh_container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed handler over the harness's service, and a batch of one trusted, one forged and one
    # retryable record
    import functions.stripe_events.app as app
    from tollgate import bootstrap

    bridge = bridge_for(h)
    monkeypatch.setattr(bootstrap.Container, "stripe_event_bridge", property(lambda c: bridge))
    h.stripe.fail_with = errors.UpstreamUnavailable()
    good = eventbridge_envelope(load_event("customer.subscription.updated"))
    forged = eventbridge_envelope(load_event("invoice.payment_failed"), source="com.example.fake")
    retryable = eventbridge_envelope(load_event("v2.billing.pricing_plan_subscription.servicing_activated"))
    event = sqs_event([json.dumps(good), json.dumps(forged), json.dumps(retryable)])
    # When Lambda invokes it with the batch
    answer = app.handler(event, FakeLambdaContext(function_name="tollgate-stripe-events"))
    # Then only the retryable record comes back (the forged one is refused and acknowledged)
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["messageId"]}]}
    assert h.repository.applied == [good["detail"]["id"]]


def test_the_composition_root_trusts_exactly_the_configured_sources(
    fresh_container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's environment as the template writes it (both partner sources, comma-separated)
    monkeypatch.setenv("STRIPE_EVENT_SOURCES", f"{RECORDED_PARTNER_SOURCE},aws.partner/stripe.com/ed_thin")
    bridge = fresh_container.stripe_event_bridge
    assert bridge.trusted_sources == {RECORDED_PARTNER_SOURCE, "aws.partner/stripe.com/ed_thin"}
    assert bridge.webhook is fresh_container.webhook  # the one webhook service: one ledger for both paths
