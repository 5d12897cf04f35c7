"""Builds the usage reporter from the composition root's clients and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollgate.errors import ConfigurationError
from tollgate.usage.ledger import DynamoUsageLedger
from tollgate.usage.parking import DeadLetterParking
from tollgate.usage.reporter import UsageReporter
from tollgate.usage.transport import MeterTransport, StreamTransport, V1Transport

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.bootstrap import Container


def ledger_dynamodb_client(concurrency: int) -> DynamoDBClient:
    """The shared client's settings with a connection pool as large as the ledger's thread pool (botocore's
    default of 10 would make the extra threads wait for, or churn, connections). boto3 clients are thread-safe."""
    import boto3
    from botocore.config import Config

    from tollgate.adapters.aws import AWS_CLIENT_CONFIG

    return boto3.client("dynamodb", config=AWS_CLIENT_CONFIG.merge(Config(max_pool_connections=max(10, concurrency))))


def build_usage_reporter(container: Container) -> UsageReporter:
    from tollgate.customers import DynamoCustomerDirectory
    from tollgate.observability import metrics

    settings = container.settings
    if not settings.usage_dlq_url:
        raise ConfigurationError("invalid configuration: USAGE_DLQ_URL is required by the usage reporter")
    transport: MeterTransport = (
        StreamTransport(container.stripe) if settings.usage_transport == "stream" else V1Transport(container.stripe)
    )
    # The usage function's only DynamoDB client (ledger and customer lookups), so no extra client at cold start.
    dynamodb = ledger_dynamodb_client(settings.usage_ledger_concurrency)
    return UsageReporter(
        ledger=DynamoUsageLedger(dynamodb, settings.table_name),
        transport=transport,
        directory=DynamoCustomerDirectory(dynamodb, settings.table_name),
        parking=DeadLetterParking(container.sqs, settings.usage_dlq_url),
        metrics=metrics,
        known_meters=settings.usage_meter_event_names,
        ledger_concurrency=settings.usage_ledger_concurrency,
    )
