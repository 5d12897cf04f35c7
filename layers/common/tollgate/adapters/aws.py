"""boto3 clients with explicit retry and timeout settings, and translation of botocore errors.

Clients honour ``AWS_ENDPOINT_URL`` (set by the local stack), so the same code runs against moto or AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tollgate import errors
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Short timeouts and standard retries: a call must fail fast enough for the caller to answer 5xx in time.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 3},
)

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


def dynamodb_client(max_pool_connections: int | None = None) -> DynamoDBClient:
    """``max_pool_connections``: as many pooled connections as the caller's threads (botocore's default of 10
    would make extra threads wait for, or churn, connections). boto3 clients are thread-safe."""
    config = AWS_CLIENT_CONFIG
    if max_pool_connections is not None:
        config = config.merge(Config(max_pool_connections=max(10, max_pool_connections)))
    return boto3.client("dynamodb", config=config)


def sqs_client() -> SQSClient:
    return boto3.client("sqs", config=AWS_CLIENT_CONFIG)


def events_client() -> EventBridgeClient:
    return boto3.client("events", config=AWS_CLIENT_CONFIG)


def secretsmanager_client() -> SecretsManagerClient:
    return boto3.client("secretsmanager", config=AWS_CLIENT_CONFIG)


def error_code(error: ClientError) -> str:
    err: Any = error.response.get("Error", {})
    return str(err.get("Code", ""))


@contextmanager
def aws_errors(operation: str) -> Iterator[None]:
    """Translate throttling and service faults into PersistenceUnavailable; other client errors propagate."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in THROTTLING_CODES:
            logger.warning("aws unavailable", operation=operation, code=code)
            raise errors.PersistenceUnavailable() from exc
        raise
    except BotoCoreError as exc:
        logger.warning("aws connection failed", operation=operation, error_type=type(exc).__name__)
        raise errors.PersistenceUnavailable() from exc
