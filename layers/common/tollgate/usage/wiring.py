"""Builds the usage reporter from the composition root's clients and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollgate.errors import ConfigurationError
from tollgate.usage.ledger import DynamoUsageLedger
from tollgate.usage.parking import DeadLetterParking
from tollgate.usage.reporter import UsageReporter
from tollgate.usage.transport import MeterTransport, StreamTransport, V1Transport

if TYPE_CHECKING:
    from tollgate.bootstrap import Container


def build_usage_reporter(container: Container) -> UsageReporter:
    from tollgate.customers import DynamoCustomerDirectory
    from tollgate.observability import metrics

    settings = container.settings
    if not settings.usage_dlq_url:
        raise ConfigurationError("invalid configuration: USAGE_DLQ_URL is required by the usage reporter")
    transport: MeterTransport = (
        StreamTransport(container.stripe) if settings.usage_transport == "stream" else V1Transport(container.stripe)
    )
    return UsageReporter(
        ledger=DynamoUsageLedger(container.dynamodb, settings.table_name),
        transport=transport,
        directory=DynamoCustomerDirectory(container.dynamodb, settings.table_name),
        parking=DeadLetterParking(container.sqs, settings.usage_dlq_url),
        metrics=metrics,
        known_meters=settings.usage_meter_event_names,
    )
