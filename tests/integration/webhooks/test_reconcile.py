"""Reconciling the table with Stripe repairs a change whose events never arrived, through the webhook's own path,
and never hides a newer change (tollgate.services.reconcile)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.webhooks.test_success_page_race import USER, World, build_world, pay
from tollgate import errors
from tollgate.adapters.stripe_api.subscription_source import SdkSubscriptionSource, stripe_time
from tollgate.ports.stripe import FetchedPage, SubscriptionSource
from tollgate.services.reconcile import Reconciler

pytestmark = pytest.mark.slow


@pytest.fixture
def world(emu: Any, stripe_client: Any, billing_table: str) -> World:
    return build_world(emu, stripe_client, billing_table)


def subscribed(world: World) -> tuple[str, str]:
    """A paid checkout whose completion was delivered: (customer id, subscription id)."""
    _, completed = pay(world)
    assert world.deliver(completed).result == "applied"
    session = completed["data"]["object"]
    return session["customer"], session["subscription"]


def change_cancel_at_period_end(world: World, subscription_id: str, value: bool) -> dict[str, Any]:
    """Change it in Stripe a few seconds later; return the customer.subscription.updated event Stripe emitted."""
    world.emu.clock.advance(5)
    world.client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": value})
    events = world.client.v1.events.list({"type": "customer.subscription.updated", "limit": 100}).data
    event = next(e for e in events if e.data.object.cancel_at_period_end == value)
    return json.loads(str(event))  # the SDK's own JSON form (to_dict keeps Decimals that json cannot encode)


def shown(world: World) -> dict[str, Any]:
    return world.status.for_user(USER)


def reconciler(world: World, source: SubscriptionSource | None = None) -> Reconciler:
    return Reconciler(source or SdkSubscriptionSource(lambda: world.client), world.service.writer, None)


def test_a_change_whose_event_was_lost_is_repaired_and_announced(world: World) -> None:
    # Given a subscription whose cancellation was scheduled (event delivered), then undone (event lost)
    customer, subscription = subscribed(world)
    assert world.deliver(change_cancel_at_period_end(world, subscription, True)).result == "applied"
    change_cancel_at_period_end(world, subscription, False)  # never delivered
    assert shown(world)["cancel_at_period_end"] is True
    # When the customer is reconciled with Stripe
    world.emu.clock.advance(5)
    report = reconciler(world).run(customer)
    # Then the table shows Stripe's state, and the change was announced under the reconcile's id
    assert (report.subscriptions, report.state_changes) == (1, 1)
    assert shown(world)["cancel_at_period_end"] is False
    renewed = [e for e in world.published() if e.name == "subscription.renewed"]
    assert [e.stripe_event_id.startswith("reconcile_") for e in renewed] == [True]
    # And a second reconcile changes nothing it announces
    world.emu.clock.advance(5)
    reconciler(world).run(customer)
    assert len([e for e in world.published() if e.name == "subscription.renewed"]) == 1


class ObjectTimestamps:
    """The CONTROL: the fetch dated by the newest timestamp the objects carry (as if Stripe's clock were unknown)."""

    def __init__(self, inner: SubscriptionSource) -> None:
        self._inner = inner

    def pages(self, customer_id: str | None) -> Iterator[FetchedPage]:
        for page in self._inner.pages(customer_id):
            stamps = [s.get("created", 0) for s in page.subscriptions] + [
                i.get("current_period_start", 0) for s in page.subscriptions for i in s["items"]["data"]
            ]
            yield FetchedPage(page.subscriptions, max(stamps))


def test_control_dating_the_fetch_by_object_timestamps_leaves_the_lost_change_unrepaired(world: World) -> None:
    customer, subscription = subscribed(world)
    world.deliver(change_cancel_at_period_end(world, subscription, True))
    change_cancel_at_period_end(world, subscription, False)
    world.emu.clock.advance(5)
    reconciler(world, ObjectTimestamps(SdkSubscriptionSource(lambda: world.client))).run(customer)
    assert shown(world)["cancel_at_period_end"] is True


def test_an_event_newer_than_the_reconcile_still_applies(world: World) -> None:
    # Given a reconciled subscription
    customer, subscription = subscribed(world)
    world.emu.clock.advance(5)
    reconciler(world).run(customer)
    # When Stripe changes it afterwards and delivers the event
    outcome = world.deliver(change_cancel_at_period_end(world, subscription, True))
    # Then it applies over the reconciled state
    assert outcome.result == "applied"
    assert shown(world)["cancel_at_period_end"] is True


def test_reconciling_every_subscription_pages_through_the_account(world: World) -> None:
    # Given two subscribed users
    subscribed(world)
    _, completed = pay(world, user="user-race-2")
    world.deliver(completed)
    # When all subscriptions are reconciled, one per page
    source = SdkSubscriptionSource(lambda: world.client)
    source.PAGE_SIZE = 1  # type: ignore[misc]
    report = reconciler(world, source).run(None)
    # Then both were seen (the account may hold others from earlier tests), and nothing changed
    assert report.subscriptions >= 2
    assert report.state_changes <= report.subscriptions


@pytest.mark.parametrize("headers", [None, {}, {"Content-Type": "application/json"}, {"date": "not a date"}])
def test_without_stripes_date_there_is_no_safe_watermark_so_reconcile_refuses(headers: Any) -> None:
    with pytest.raises(errors.UpstreamUnavailable):
        stripe_time(headers)


def test_stripes_date_header_is_read_in_any_case() -> None:
    assert stripe_time({"date": "Sun, 22 Nov 2026 04:00:00 GMT"}) == stripe_time(
        {"Date": "Sun, 22 Nov 2026 04:00:00 GMT"}
    )
