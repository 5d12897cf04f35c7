"""The webhook pipeline on moto with real-shaped events: dispatch, dedup, order safety, fetch-latest, faults."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.integration.webhooks.harness import (
    Crash,
    Harness,
    build_harness,
    ledger_item,
    load_event,
    subscription_event_at,
)
from tollgate import errors
from tollgate.services.webhook import WebhookDelivery


@pytest.fixture
def h(billing_table: str) -> Harness:
    return build_harness(boto3.client("dynamodb"), billing_table)


def sub_event(eid: str, created: int, status: str = "active", **changes: Any) -> dict[str, Any]:
    event = subscription_event_at("customer.subscription.updated", eid, created)
    event["data"]["object"]["status"] = status
    event["data"]["object"].update(changes)
    return event


def current(h: Harness) -> Any:
    return h.repository.current_for_customer("cus_TestProjection01")


def test_subscription_update_projects_items_period_and_links_the_user(h: Harness) -> None:
    # Given a real-shaped customer.subscription.updated
    outcome = h.deliver(load_event("customer.subscription.updated"))
    # Then the projection holds status, price, quantity and the period end taken from the items
    state = current(h)
    assert outcome.result == "applied"
    assert (state.status, state.price_id, state.quantity) == ("active", "price_1TestPro", 1)
    assert (state.current_period_start, state.current_period_end) == (1790000000, 1792592000)
    assert h.directory.links == {"cus_TestProjection01": "user-123"}
    assert h.bus.names() == ["subscription.activated"]


def test_a_duplicate_of_a_completed_event_answers_2xx_with_no_writes(h: Harness) -> None:
    event = load_event("customer.subscription.updated")
    h.deliver(event)
    # When Stripe delivers it again
    outcome = h.deliver(event)
    # Then 2xx, no new state change, no new domain event
    assert outcome.result == "duplicate"
    assert len(h.repository.applied) == 1
    assert len(h.bus.events) == 1


def test_an_older_snapshot_never_overwrites_newer_state(h: Harness) -> None:
    h.deliver(sub_event("evt_new", 200, "canceled"))
    h.deliver(sub_event("evt_old", 100, "active"))
    assert current(h).status == "canceled"
    assert h.stripe.fetches == 0


def test_a_same_second_tie_fetches_the_current_object(h: Harness) -> None:
    # Given Stripe's current state is past_due and two events of the same second arrive
    latest = sub_event("x", 0, "past_due")["data"]["object"]
    h.stripe.objects[latest["id"]] = latest
    h.deliver(sub_event("evt_b", 100, "past_due"))
    h.deliver(sub_event("evt_a", 100, "active"))
    # Then the tie was settled by fetch-latest, not by arrival order
    assert h.stripe.fetches == 1
    assert current(h).status == "past_due"


def renewed(status: str, period_start: int) -> dict[str, Any]:
    """The subscription as Stripe has it after a renewal at ``period_start``."""
    obj = sub_event("x", 0, status)["data"]["object"]
    for item in obj["items"]["data"]:
        item["current_period_start"] = period_start
    return obj


@pytest.mark.parametrize("dated_by_the_event", [False, True], ids=["fetch-dated-by-stripe", "control-event-dated"])
def test_a_late_tie_fetch_is_not_rolled_back_by_the_events_stripe_sent_in_between(
    h: Harness, monkeypatch: pytest.MonkeyPatch, dated_by_the_event: bool
) -> None:
    # Given a subscription projected active at second 100, and Stripe since renewed it at 200 and failed the payment
    h.deliver(sub_event("evt_paid", 100, "active"))
    latest = renewed("past_due", 200)
    h.stripe.objects[latest["id"]] = latest
    if dated_by_the_event:  # the naive fetch: ordered at the tying event's second, whatever Stripe shows
        monkeypatch.setattr("tollgate.domain.projection.subscription_observed_at", lambda _obj: 0)
    # When a late copy of a second-100 event ties, and the fetch brings the current state (past_due)
    h.deliver(sub_event("evt_late_copy", 100, "active"))
    assert current(h).status == "past_due"
    # And then the renewal's own events of second 200 arrive, the "renewed, still active" one first
    h.deliver(sub_event("evt_renewal_started", 200, "active"))
    h.deliver(sub_event("evt_renewal_past_due", 200, "past_due"))
    # Then the state stays past_due and no second activation is announced; the naive fetch lets it flap back
    # (past_due, active, past_due: a second subscription.activated for consumers)
    if dated_by_the_event:
        assert h.bus.names().count("subscription.activated") == 2
        assert current(h).status == "past_due"
    else:
        assert current(h).status == "past_due"
        assert h.bus.names().count("subscription.activated") == 1


def test_invoice_failure_projects_latest_invoice_and_announces_payment_failed(h: Harness) -> None:
    h.deliver(load_event("invoice.payment_failed"))
    h.deliver(load_event("customer.subscription.updated"))
    state = current(h)
    assert (state.latest_invoice_id, state.latest_invoice_status) == ("in_1TestProjection0001", "open")
    assert h.bus.names()[0] == "payment.failed"


def invoice_event(eid: str, event_created: int, invoice_id: str, invoice_created: int, kind: str) -> dict[str, Any]:
    event = load_event("invoice.payment_failed")
    event.update(id=eid, created=event_created, type=f"invoice.{kind}")
    event["data"]["object"].update(id=invoice_id, created=invoice_created, status="paid" if kind == "paid" else "open")
    return event


def test_a_late_event_about_an_older_invoice_keeps_the_latest_invoice_shown(h: Harness) -> None:
    # Given a subscription whose invoice of this month failed, then last month's invoice is paid late (a newer
    # event, an older invoice)
    h.deliver(load_event("customer.subscription.updated"))
    h.deliver(invoice_event("evt_inv_new", 2_000, "in_new", 1_900, "payment_failed"))
    outcome = h.deliver(invoice_event("evt_inv_old", 2_100, "in_old", 1_000, "paid"))
    # Then last month's invoice is recorded on its own item, the latest invoice shown is still this month's, and
    # the late payment is announced by that write
    state = current(h)
    assert outcome.result == "applied"
    assert (state.latest_invoice_id, state.latest_invoice_status) == ("in_new", "open")
    assert h.bus.names()[-2:] == ["payment.failed", "payment.succeeded"]
    # And a newer event about this month's invoice still updates it
    h.deliver(invoice_event("evt_inv_new_paid", 2_200, "in_new", 1_900, "paid"))
    assert (current(h).latest_invoice_id, current(h).latest_invoice_status) == ("in_new", "paid")


def test_checkout_completed_fetches_the_subscription_and_grants(h: Harness) -> None:
    sub = load_event("customer.subscription.updated")["data"]["object"]
    h.stripe.objects[sub["id"]] = sub
    h.deliver(load_event("checkout.session.completed"))
    assert current(h).status == "active"
    assert h.directory.links["cus_TestProjection01"] == "user-123"
    assert h.bus.names() == ["subscription.activated"]


def test_entitlements_summary_projects_feature_lookup_keys(h: Harness) -> None:
    h.deliver(load_event("customer.subscription.updated"))
    h.deliver(load_event("entitlements.active_entitlement_summary.updated"))
    assert current(h).features == ("pro_features",)


def test_customer_deleted_is_recorded_and_announced(h: Harness) -> None:
    h.deliver(load_event("customer.deleted"))
    assert h.directory.deleted == {"cus_TestProjection01"}
    assert h.bus.names() == ["customer.deleted"]


PRICING_PLAN_SUBSCRIPTION = "bpps_test_61TestPricingPlan0001"  # the related object of the thin event fixture


def stripe_has_pricing_plan_subscription(h: Harness) -> None:
    h.stripe.objects[PRICING_PLAN_SUBSCRIPTION] = {
        "id": PRICING_PLAN_SUBSCRIPTION,
        "object": "v2.billing.pricing_plan_subscription",
        "customer": "cus_TestProjection01",
        "servicing_status": "active",
        "collection_status": "current",
        "pricing_plan": "bpp_test_1",
        "metadata": {},
    }


def test_thin_event_fetches_current_state(h: Harness) -> None:
    stripe_has_pricing_plan_subscription(h)
    h.deliver(load_event("v2.billing.pricing_plan_subscription.servicing_activated"))
    state = current(h)
    assert (state.kind, state.pricing_plan_servicing, state.pricing_plan_collection) == (
        "pricing_plan_subscription",
        "active",
        "current",
    )
    assert h.stripe.fetches == 1


def test_thin_event_for_a_deleted_object_is_acknowledged(h: Harness) -> None:
    # Given a pricing-plan subscription never projected here, already deleted in Stripe
    outcome = h.deliver(load_event("v2.billing.pricing_plan_subscription.servicing_activated"))
    # Then 2xx with nothing to mark
    assert outcome.result == "applied"
    assert current(h) is None


def test_thin_event_for_a_projected_object_deleted_since_records_it_as_gone(h: Harness) -> None:
    # Given a pricing-plan subscription projected from an earlier thin event
    pps_id = PRICING_PLAN_SUBSCRIPTION
    stripe_has_pricing_plan_subscription(h)
    h.deliver(load_event("v2.billing.pricing_plan_subscription.servicing_activated"))
    assert current(h).status == "active"
    # When it is deleted in Stripe and a later thin event names it (the fetch answers 404)
    del h.stripe.objects[pps_id]
    later = load_event("v2.billing.pricing_plan_subscription.servicing_activated")
    later.update(
        id="evt_test_65TestPricingPlanCanceled", type="v2.billing.pricing_plan_subscription.servicing_canceled"
    )
    later["created"] = "2026-09-22T12:00:00.000Z"
    outcome = h.deliver(later)
    # Then it is recorded as gone on the customer it was projected for: access ends, retries stop
    assert outcome.result == "applied"
    [state] = h.repository.for_customer("cus_TestProjection01")
    assert (state.subscription_id, state.gone, state.status) == (pps_id, True, "canceled")
    assert h.bus.names()[-1] == "subscription.canceled"


def test_thin_event_fetch_5xx_is_non_2xx_and_the_retry_applies(h: Harness) -> None:
    event = load_event("v2.billing.pricing_plan_subscription.servicing_activated")
    h.stripe.fail_with = errors.UpstreamUnavailable()
    with pytest.raises(errors.UpstreamUnavailable):
        h.deliver(event)
    # When Stripe retries after the outage
    h.stripe.fail_with = None
    assert h.deliver(event).result == "applied"  # the failed attempt released its lease


def test_deleted_subscription_on_tie_is_recorded_as_gone(h: Harness) -> None:
    # Given two same-second events and a subscription Stripe no longer has (retrieve answers 404)
    h.deliver(sub_event("evt_b", 100))
    outcome = h.deliver(sub_event("evt_a", 100))
    # Then the delivery is acknowledged and the object recorded as gone, which denies access
    (state,) = h.repository.for_customer("cus_TestProjection01")
    assert outcome.result == "applied"
    assert (state.gone, state.status) == (True, "canceled")
    assert "subscription.canceled" in h.bus.names()


def test_meter_error_report_is_recorded_and_counted(h: Harness) -> None:
    h.deliver(load_event("v1.billing.meter.error_report_triggered"))
    (report,) = h.meter_errors.reports
    assert (report.meter_id, report.error_codes, report.identifiers) == (
        "mtr_test_61TestMeter0001",
        ("meter_event_no_customer_defined",),
        ("usage-42",),
    )


def test_unknown_and_health_types_are_acknowledged(h: Harness) -> None:
    unknown = sub_event("evt_unknown", 100)
    unknown["type"] = "charge.refunded"
    assert h.deliver(unknown).result == "unhandled_type"
    health = load_event("v2.billing.pricing_plan_subscription.servicing_activated")
    health["type"] = "v2.core.health.api_error.firing"
    assert h.deliver(health).result == "applied"
    assert h.bus.names() == ["stripe.health"]


def test_wrong_kind_or_malformed_payload_is_400(h: Harness) -> None:
    thin_as_snapshot = load_event("v2.billing.pricing_plan_subscription.servicing_activated")
    thin_as_snapshot["object"] = "event"
    for body in (thin_as_snapshot, {"object": "list"}, b"not json", b"\xff\xfe"):
        with pytest.raises(errors.InvalidRequest):
            h.deliver(body)


def test_body_over_the_cap_is_413_before_any_signature_work(h: Harness) -> None:
    with pytest.raises(errors.PayloadTooLarge):
        h.service.receive(WebhookDelivery(b"x" * (h.service.max_body_bytes + 1), None, 9000))


def test_no_signing_secret_fails_closed_with_5xx(h: Harness) -> None:
    h.secrets.clear()
    with pytest.raises(errors.ConfigurationError):
        h.deliver(load_event("customer.subscription.updated"), secret="anything")


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_signing_secret_fails_closed_instead_of_verifying_with_it(h: Harness, blank: str) -> None:
    # Given a secret whose webhook_secrets holds only an empty placeholder
    h.secrets[:] = [blank]
    # When a forger signs with that (publicly guessable) empty key
    event = load_event("customer.subscription.updated")
    # Then nothing is verified against it: 5xx (fail closed), nothing applied
    with pytest.raises(errors.ConfigurationError):
        h.deliver(event, secret=blank)
    assert h.repository.applied == []


def test_a_blank_entry_beside_a_real_secret_is_ignored(h: Harness) -> None:
    real = h.secrets[0]
    h.secrets[:] = ["", real]
    event = load_event("customer.subscription.updated")
    with pytest.raises(errors.InvalidRequest):
        h.deliver(event, secret="")
    assert h.deliver(event, secret=real).result == "applied"


def leased_event(h: Harness) -> dict[str, Any]:
    """checkout.session.completed reads the subscription from Stripe, so it always runs under a lease."""
    sub = load_event("customer.subscription.updated")["data"]["object"]
    h.stripe.objects[sub["id"]] = sub
    return load_event("checkout.session.completed")


def test_in_progress_duplicate_is_non_2xx_and_an_expired_lease_is_reclaimed(h: Harness) -> None:
    event = leased_event(h)

    def crash(_: Any) -> None:
        raise Crash

    # Given an attempt that claimed the event and died before committing (a timeout)
    h.repository.before_write = crash
    with pytest.raises(Crash):
        h.deliver(event, remaining_ms=5000)
    h.repository.before_write = None
    # When a retry arrives while the lease is alive, then after it expired
    with pytest.raises(errors.Conflict):
        h.deliver(event)
    h.clock.now += 10
    # Then the first is refused (Stripe retries) and the second applies exactly once
    assert h.deliver(event).result == "applied"
    assert h.repository.applied == [event["id"]]


def test_every_lease_expires_within_the_remaining_invocation_time(h: Harness, billing_table: str) -> None:
    h.repository.before_write = lambda _: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        h.deliver(leased_event(h), remaining_ms=3000)
    event_id = load_event("checkout.session.completed")["id"]
    item = ledger_item(billing_table, event_id)
    assert int(item["lease_expires_at"]["N"]) <= h.clock.now + 3
    assert int(item["expires_at"]["N"]) >= h.clock.now + 30 * 86400


def test_a_crash_after_the_commit_is_a_duplicate_on_retry_and_announced_once(h: Harness) -> None:
    event = load_event("customer.subscription.updated")
    original = h.repository.write_if_newer

    def commit_then_crash(write: Any, **kwargs: Any) -> Any:
        original(write, **kwargs)
        raise Crash

    # Given an attempt that committed the state, then timed out before answering
    h.repository.write_if_newer = commit_then_crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        h.deliver(event, remaining_ms=2000)
    h.repository.write_if_newer = original  # type: ignore[method-assign]
    # When Stripe retries, at once and again later
    assert h.deliver(event).result == "duplicate"
    h.clock.now += 60
    assert h.deliver(event).result == "duplicate"
    # Then the state was committed once, and the activation it caused was announced once (from the stream)
    assert h.repository.applied == ["evt_1TestSubUpdated0001"]
    assert h.bus.names() == ["subscription.activated"]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda o: o.pop("customer"),  # InvalidRequest from the handler
        lambda o: o.pop("id"),  # KeyError
        lambda o: o.update(items={"data": "not-a-list"}),  # mistyped field
    ],
    ids=["no_customer", "no_id", "mistyped_items"],
)
def test_signed_but_unusable_snapshot_is_acknowledged_without_writes(
    h: Harness, billing_table: str, breakage: Any
) -> None:
    # Given a validly signed subscription event whose object cannot be projected
    event = sub_event("evt_unusable", 100)
    breakage(event["data"]["object"])
    # When it is delivered (twice: Stripe would retry any non-2xx for 3 days)
    outcomes = [h.deliver(event).result for _ in range(2)]
    # Then it is acknowledged as unprocessable, and nothing was written or announced
    assert outcomes == ["unprocessable", "unprocessable"]
    assert h.repository.applied == []
    assert h.bus.events == []
    assert boto3.client("dynamodb").scan(TableName=billing_table)["Items"] == []


def test_signed_but_unusable_thin_event_is_acknowledged_and_its_lease_released(h: Harness, billing_table: str) -> None:
    # Given a signed thin event without its related object (the leased path)
    event = load_event("v2.billing.pricing_plan_subscription.servicing_activated")
    event.pop("related_object")
    # When it is delivered / Then 2xx-ignored, no lease left behind, nothing fetched
    assert h.deliver(event).result == "unprocessable"
    assert boto3.client("dynamodb").scan(TableName=billing_table)["Items"] == []
    assert h.stripe.fetches == 0


def test_the_lease_ends_within_the_invocation_even_after_a_slow_start(h: Harness, billing_table: str) -> None:
    # Given an invocation with 6 s left whose signing secrets take 4 s to load (a cold Secrets Manager read)
    started = h.clock.now
    keys = list(h.secrets)

    def slow_secrets() -> list[str]:
        h.clock.now += 4
        return keys

    h.service.signing_secrets = slow_secrets
    h.repository.before_write = lambda _: (_ for _ in ()).throw(Crash())
    # When the leased attempt claims the event and then times out before committing
    with pytest.raises(Crash):
        h.deliver(leased_event(h), remaining_ms=6000)
    # Then its lease ends no later than the invocation did (not 5 s after the late claim)
    event_id = load_event("checkout.session.completed")["id"]
    item = ledger_item(billing_table, event_id)
    assert int(item["lease_expires_at"]["N"]) <= started + 6


def test_no_lease_is_taken_without_a_second_of_invocation_left(h: Harness, billing_table: str) -> None:
    # Given an invocation about to time out / When a leased event arrives
    with pytest.raises(errors.Conflict):
        h.deliver(leased_event(h), remaining_ms=900)
    # Then nothing was claimed (a lease would outlive the invocation) and Stripe retries
    assert boto3.client("dynamodb").scan(TableName=billing_table)["Items"] == []
