"""A webhook harness on moto: real DynamoDB adapters, a Stripe stand-in for fetch-latest, a recording bus,
and a sender that signs deliveries the way Stripe does."""

from __future__ import annotations

import copy
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.stream_poller import StreamPoller
from tests.support import events
from tests.support.moto_clients import AtomicDynamoDB
from tests.support.streams import publisher_poller
from tollgate import errors
from tollgate.adapters.dynamodb.event_ledger import DynamoEventLedger
from tollgate.adapters.dynamodb.subscription_repository import DynamoSubscriptionRepository
from tollgate.domain.effects import MeterErrorReport
from tollgate.domain.events import DomainEvent
from tollgate.domain.signatures import sign
from tollgate.domain.subscriptions import StateWrite, WriteResult
from tollgate.services.subscription_writes import SubscriptionWriter
from tollgate.services.webhook import WebhookDelivery, WebhookOutcome, WebhookService
from tollgate.services.webhook_handlers import HandlerContext


def load_event(name: str) -> dict[str, Any]:
    """A recorded Stripe event (tests/events/stripe/<name>.json)."""
    return events.load_event(f"stripe/{name}")


def subscription_event_at(name: str, event_id: str, created: int) -> dict[str, Any]:
    """A recorded subscription event re-dated to ``created``, its object's own past moments (creation, start,
    each item's period start) at that second too: an object Stripe sends at second ``created`` records nothing
    later, and the recording's real dates would otherwise read as a fetch made long after these tests' seconds."""
    event = load_event(name)
    event["id"], event["created"] = event_id, created
    obj = event["data"]["object"]
    obj["created"] = obj["start_date"] = created
    for item in obj["items"]["data"]:
        item["current_period_start"] = created
    return event


class Crash(BaseException):
    """A Lambda timeout: skips every `except Exception` clean-up."""


def ledger_item(table: str, event_id: str) -> dict[str, Any]:
    """The event's ledger item (``EVENT#{id}``), as DynamoDB returns it."""
    import boto3

    item: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}
    )["Item"]
    return item


def signing_secret() -> str:
    return "wh" + "sec_" + secrets.token_hex(16)


class StripeStandIn:
    """Authoritative current objects for fetch-latest, with fault knobs."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.fail_with: errors.TollgateError | None = None
        self.fetches = 0
        self._lock = threading.Lock()

    def _get(self, object_id: str) -> dict[str, Any]:
        with self._lock:
            self.fetches += 1
        if self.fail_with is not None:
            raise self.fail_with
        if object_id not in self.objects:
            raise errors.UpstreamNotFound()
        return copy.deepcopy(self.objects[object_id])

    subscription = checkout_session = pricing_plan_subscription = _get

    def active_entitlement_keys(self, customer_id: str) -> tuple[str, ...]:
        return tuple(self._get(f"entitlements:{customer_id}")["keys"])


@dataclass
class RecordingBus:
    """The event bus, as the domain-event relay sees it: accepts everything and remembers it."""

    events: list[DomainEvent] = field(default_factory=list)
    max_batch: int = 10
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, events: Any) -> list[str]:
        with self._lock:
            self.events.extend(events)
        return []

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@dataclass
class FakeDirectory:
    links: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def link(self, user_id: str, customer_id: str, *, subscribed: bool = False) -> None:
        if self.links.get(customer_id, user_id) != user_id:
            raise errors.Conflict()
        self.links[customer_id] = user_id

    def user_for_customer(self, customer_id: str) -> str | None:
        return self.links.get(customer_id)

    def customer_for_user(self, user_id: str) -> str | None:
        return next((c for c, u in self.links.items() if u == user_id), None)

    def mark_deleted(self, customer_id: str) -> None:
        self.deleted.add(customer_id)


@dataclass
class MeterErrors:
    reports: list[MeterErrorReport] = field(default_factory=list)

    def record(self, report: MeterErrorReport) -> None:
        self.reports.append(report)


class CountingRepository(DynamoSubscriptionRepository):
    """Counts state changes that committed (the side effects the load tests assert on)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.applied: list[str] = []
        self.before_write: Callable[[StateWrite], None] | None = None
        self._lock = threading.Lock()

    def write_if_newer(self, write: StateWrite, *, after_tie: bool = False) -> WriteResult:
        if self.before_write:
            self.before_write(write)
        result = super().write_if_newer(write, after_tie=after_tie)
        if result.outcome.value == "applied":
            with self._lock:
                self.applied.append(write.watermark.event_id)
        return result


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    service: WebhookService
    stripe: StripeStandIn
    bus: RecordingBus
    directory: FakeDirectory
    repository: CountingRepository
    meter_errors: MeterErrors
    secrets: list[str]
    clock: Clock
    #: The publisher's event source mapping on the table's stream, feeding ``bus``.
    stream: StreamPoller
    #: Publish what the table's stream holds after every delivery (off for concurrent senders: publish() at the end).
    publish_each: bool = True

    def deliver(
        self, event: dict[str, Any] | bytes, *, secret: str | None = None, remaining_ms: int = 9000
    ) -> WebhookOutcome:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        header = sign(body, secret or self.secrets[0], int(self.clock()))
        try:
            return self.service.receive(WebhookDelivery(body, header, remaining_ms))
        finally:
            if self.publish_each:
                self.publish()

    def publish(self) -> int:
        """Run the publisher on everything the table's stream holds now; returns the records it was given."""
        return self.stream.poll()


def build_harness(client: Any, table: str, *, clock: Clock | None = None, wait_seconds: float = 0.0) -> Harness:
    client = client if hasattr(client, "_lock") else AtomicDynamoDB(client)  # already serialized: keep it
    clock = clock or Clock()
    stripe = StripeStandIn()
    bus = RecordingBus()
    directory = FakeDirectory()
    repo = CountingRepository(client, table, clock=clock)
    meter = MeterErrors()
    keys = [signing_secret()]
    service = WebhookService(
        signing_secrets=lambda: keys,
        ledger=DynamoEventLedger(client, table, clock=clock),
        writer=SubscriptionWriter(repo, directory, meter),
        context=HandlerContext(reader=stripe, catalog=None, owners=repo),
        clock=clock,
        sleep=lambda s: None,
        in_progress_wait_seconds=wait_seconds,
    )
    return Harness(service, stripe, bus, directory, repo, meter, keys, clock, publisher_poller(table, bus))
