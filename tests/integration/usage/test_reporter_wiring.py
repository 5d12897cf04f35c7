"""The composition root wires the usage reporter with its configured ledger concurrency and a matching pool."""

from __future__ import annotations

from typing import Any

from tollgate.config import Settings


def test_the_wired_reporter_gets_its_concurrency_and_a_connection_pool_to_match(aws: Any) -> None:
    from tollgate.bootstrap import Container

    # Given the usage function's settings with USAGE_LEDGER_CONCURRENCY=24
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "tollgate-test",
            "STRIPE_SECRET_ARN": "arn:unused",
            "USAGE_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            "USAGE_LEDGER_CONCURRENCY": "24",
        }
    )
    # When the composition root builds the reporter
    reporter = Container(settings).usage_reporter
    # Then 24 ledger calls may run at once, each with its own pooled DynamoDB connection (botocore's default: 10)
    assert reporter.ledger_concurrency == 24
    ledger_client = reporter._ledger._client  # type: ignore[attr-defined]
    assert ledger_client.meta.config.max_pool_connections == 24
