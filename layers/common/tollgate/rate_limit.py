"""Per-user limit on session creation (Checkout, Portal, plan-change previews), in fixed one-minute windows.

One conditional ``UpdateItem`` per request on ``RATE#{user_id}#{window}``: the counter only grows while it is
under the limit, so concurrent requests can never admit more than ``limit`` in a window. Items expire by TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW_SECONDS = 60


class RateLimiter(Protocol):
    def admit(self, user_id: str) -> None:
        """Count one request for the user, or raise RateLimited when their window is full."""
        ...


class DynamoRateLimiter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limit_per_window: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table_name
        self._limit = limit_per_window
        self._clock = clock

    def admit(self, user_id: str) -> None:
        now = int(self._clock())
        window = now // WINDOW_SECONDS
        try:
            with aws_errors("rate_limit.admit"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": f"RATE#{user_id}#{window}"}, "sk": {"S": "RATE"}},
                    UpdateExpression="ADD #count :one SET expires_at = if_not_exists(expires_at, :expires)",
                    ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                    ExpressionAttributeNames={"#count": "count"},
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":limit": {"N": str(self._limit)},
                        ":expires": {"N": str((window + 2) * WINDOW_SECONDS)},
                    },
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            retry_after = max(1, (window + 1) * WINDOW_SECONDS - now)
            logger.info("session rate limit reached", outcome="rejected", retry_after=retry_after)
            raise errors.RateLimited("too many requests: try again shortly", retry_after_seconds=retry_after) from None
