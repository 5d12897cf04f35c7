"""Per-user limit on session creation (Checkout, Portal, plan-change previews): a sliding one-minute window.

One conditional ``UpdateItem`` per request on ``RATE#{user_id}``, which keeps a counter per clock minute
(``w{minute}``, the one before last removed in the same call). The request is admitted when this minute's count
plus the previous minute's, weighted by how much of it still lies within the last 60 s, stays within the limit (a
sliding-window counter): a burst straddling a minute boundary gets the limit, where fixed windows give twice it.
It assumes the previous minute's requests were spread evenly, so it approximates a true rolling count. The
condition also caps each minute's counter at the limit, so concurrent requests never admit more than that in one
minute. Refused requests are counted (up to that cap): a client hammering the endpoint stays refused until it
slows down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW_SECONDS = 60


class DynamoRateLimiter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limit_per_window: int,
        *,
        clock: Callable[[], float] = time.time,
        scope: str | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._limit = limit_per_window
        self._clock = clock
        # Each limit counts in its own item: RATE#{user} for session creation, RATE#{scope}#{user} for the others.
        self._prefix = f"RATE#{scope}#" if scope else "RATE#"

    def admit(self, user_id: str) -> None:
        now = self._clock()
        minute = int(now // WINDOW_SECONDS)
        try:
            with aws_errors("rate_limit.admit"):
                answer = self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": f"{self._prefix}{user_id}"}, "sk": {"S": "RATE"}},
                    UpdateExpression="ADD #current :one SET expires_at = :expires REMOVE #expired",
                    ConditionExpression="attribute_not_exists(#current) OR #current < :limit",
                    ExpressionAttributeNames={
                        "#current": f"w{minute}",
                        "#expired": f"w{minute - 2}",
                    },
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":limit": {"N": str(self._limit)},
                        ":expires": {"N": str((minute + 2) * WINDOW_SECONDS)},
                    },
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            self._refuse(retry_after=(minute + 1) * WINDOW_SECONDS - now)
        item = answer.get("Attributes", {})
        current = int(item.get(f"w{minute}", {}).get("N", "1"))
        previous = int(item.get(f"w{minute - 1}", {}).get("N", "0"))
        elapsed = now - minute * WINDOW_SECONDS
        if current + previous * (1 - elapsed / WINDOW_SECONDS) > self._limit:
            # The previous minute's weight falls to (limit - current) / previous after this many seconds.
            clears_at = WINDOW_SECONDS * (1 - (self._limit - current) / previous) if previous else WINDOW_SECONDS
            self._refuse(retry_after=clears_at - elapsed)

    @staticmethod
    def _refuse(retry_after: float) -> NoReturn:
        seconds = max(1, math.ceil(retry_after))
        logger.info("session rate limit reached", outcome="rejected", retry_after=seconds)
        raise errors.RateLimited("too many requests: try again shortly", retry_after_seconds=seconds) from None
