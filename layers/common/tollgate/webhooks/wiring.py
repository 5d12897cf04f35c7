"""Wiring the webhook service from the composition root, plus the small DynamoDB meter-error log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tollgate.adapters.aws import aws_errors
from tollgate.webhooks.handlers import MeterErrorReport

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.bootstrap import Container
    from tollgate.webhooks.processor import WebhookService

METER_ERROR_RETENTION_SECONDS = 90 * 86_400


class DynamoMeterErrorLog:
    def __init__(self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def record(self, report: MeterErrorReport) -> None:
        with aws_errors("meter_errors.record"):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"METER_ERROR#{report.meter_id}"},
                    "sk": {"S": f"REPORT#{report.event_id}"},
                    "occurred_at": {"N": str(report.occurred_at)},
                    "error_count": {"N": str(report.error_count)},
                    "error_codes": {"L": [{"S": c} for c in report.error_codes]},
                    "identifiers": {"L": [{"S": i} for i in report.identifiers]},
                    "expires_at": {"N": str(int(self._clock()) + METER_ERROR_RETENTION_SECONDS)},
                },
            )


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

    return WebhookService(
        signing_secrets=lambda: tuple(s.get_secret_value() for s in c.stripe_secrets().webhook_secrets),
        ledger=DynamoEventLedger(c.dynamodb, table),
        repository=DynamoSubscriptionRepository(c.dynamodb, table),
        directory=directory,
        publisher=publisher,
        context=HandlerContext(reader=LazyReader(), catalog=settings.plan_catalog),
        meter_errors=DynamoMeterErrorLog(c.dynamodb, table),
        deletions=directory,
        expected_livemode=lambda: key_is_live(c.stripe_secrets().api_key.get_secret_value()),
        tolerance_seconds=settings.webhook_tolerance_seconds,
        max_body_bytes=settings.webhook_max_body_bytes,
    )
