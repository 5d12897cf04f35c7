"""The publisher counts the business events it published (the dashboard's activations, cancellations and payment
failures), and only those it published: a batch cut short by a bus failure counts its published part."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tollgate.domain.changes import ANNOUNCEMENTS_ATTRIBUTE, ItemChange, encode_announcements
from tollgate.domain.events import DomainEvent, domain_event
from tollgate.services.domain_event_relay import DomainEventRelay


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += int(value)


class Bus:
    max_batch = 10

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.refuse = refuse or set()

    def publish(self, events: Sequence[DomainEvent]) -> list[str]:
        return [e.id for e in events if e.id in self.refuse]


def record(sequence: str, *names: str) -> dict[str, Any]:
    events = [domain_event(name, f"evt_{sequence}", 1_700_000_000) for name in names]
    return {"sequence": sequence, "new": {ANNOUNCEMENTS_ATTRIBUTE: encode_announcements(events)}}


def decode(raw: Mapping[str, Any]) -> ItemChange:
    return ItemChange(sequence_number=raw["sequence"], old=None, new=raw["new"])


def relay(bus: Bus, metrics: Metrics) -> DomainEventRelay:
    return DomainEventRelay(bus, decode=decode, sequence_of=lambda r: r["sequence"], metrics=metrics)


def test_published_business_events_are_counted_by_kind() -> None:
    # Given a batch announcing two payment failures, an activation and a cancellation among other events
    batch = [
        record("1", "payment.failed", "trial.ending"),
        record("2", "subscription.activated"),
        record("3", "payment.failed", "subscription.canceled"),
    ]
    metrics = Metrics()
    # When the publisher relays it
    assert relay(Bus(), metrics).relay(batch) == []
    # Then each kind is counted, with the total
    assert metrics.counts == Counter(
        DomainEventsPublished=5, PaymentFailures=2, SubscriptionActivations=1, SubscriptionCancellations=1
    )


def test_control_events_the_bus_refused_are_not_counted() -> None:
    batch = [record("1", "subscription.activated"), record("2", "payment.failed")]
    metrics = Metrics()
    retry = relay(Bus(refuse={"evt_2:payment.failed"}), metrics).relay(batch)
    assert retry == ["2"]
    assert metrics.counts["SubscriptionActivations"] == 1
    assert metrics.counts["PaymentFailures"] == 0
    assert metrics.counts["DomainEventRelayFailures"] == 1
