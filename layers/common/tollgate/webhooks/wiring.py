"""Wiring the webhook service from the composition root, plus the small DynamoDB meter-error log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tollgate.webhooks.handlers import MeterErrorReport

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.bootstrap import Container
    from tollgate.webhooks.processor import WebhookService


class DynamoMeterErrorLog:
    """Stores a meter error report the usage package's way (``METER_ERROR#{identifier}`` / ``REPORT#{event_id}``,
    linked to the usage ledger item of that identifier): one key scheme for both writers."""

    def __init__(self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def record(self, report: MeterErrorReport) -> None:
        from tollgate.usage.meter_errors import link_meter_error_report

        link_meter_error_report(self._client, self._table, report.event_id, report.data, now=self._clock())


def key_is_live(api_key: str) -> bool:
    """Live keys (secret or restricted) carry ``_live_`` after their two-letter prefix."""
    return api_key[2:8] == "_live_"


def webhook_service(c: Container) -> WebhookService:
    from tollgate.customers import DynamoCustomerDirectory
    from tollgate.domain_events import DomainEventPublisher, EventBridgePublisher, NullPublisher
    from tollgate.subscriptions.repository import DynamoSubscriptionRepository
    from tollgate.webhooks.gateway import SdkStripeReader
    from tollgate.webhooks.handlers import HandlerContext
    from tollgate.webhooks.ledger import DynamoEventLedger
    from tollgate.webhooks.processor import WebhookService

    settings = c.settings
    table = settings.table_name
    directory = DynamoCustomerDirectory(c.dynamodb, table)
    publisher: DomainEventPublisher = (
        EventBridgePublisher(c.events, settings.event_bus_name) if settings.event_bus_name else NullPublisher()
    )

    class LazyReader(SdkStripeReader):
        """Builds the Stripe client only when an event needs a fetch (most deliveries do not)."""

        def __init__(self) -> None:
            pass

        @property
        def _client(self):  # type: ignore[no-untyped-def,override]
            return c.stripe()

    repository = DynamoSubscriptionRepository(c.dynamodb, table)
    return WebhookService(
        signing_secrets=lambda: tuple(s.get_secret_value() for s in c.stripe_secrets().webhook_secrets),
        ledger=DynamoEventLedger(c.dynamodb, table),
        repository=repository,
        directory=directory,
        publisher=publisher,
        context=HandlerContext(reader=LazyReader(), catalog=settings.plan_catalog, owners=repository),
        meter_errors=DynamoMeterErrorLog(c.dynamodb, table),
        deletions=directory,
        expected_livemode=lambda: key_is_live(c.stripe_secrets().api_key.get_secret_value()),
        tolerance_seconds=settings.webhook_tolerance_seconds,
        max_body_bytes=settings.webhook_max_body_bytes,
    )
