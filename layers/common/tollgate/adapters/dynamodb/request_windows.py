"""When a logical request was first seen, so its repeats within a window share one Stripe idempotency key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from tollgate.adapters.aws import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoRequestWindows:
    """``REQUEST#{fingerprint}``/``REQUEST`` items holding ``first_seen``; DynamoDB's TTL removes them.

    One conditional ``UpdateItem``: it starts a new window when there is none or the old one has ended, and
    otherwise fails and returns the item, whose ``first_seen`` every repeat then shares. The fingerprint is a hash,
    so the item holds no user id.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def first_seen(self, fingerprint: str, now: int, window_seconds: int) -> int:
        try:
            with aws_errors("request_windows.first_seen"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": f"REQUEST#{fingerprint}"}, "sk": {"S": "REQUEST"}},
                    UpdateExpression="SET first_seen = :now, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(first_seen) OR first_seen <= :ended",
                    ExpressionAttributeValues={
                        ":now": {"N": str(now)},
                        ":ended": {"N": str(now - window_seconds)},
                        ":expires": {"N": str(now + window_seconds + 60)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = cast(Any, exc.response).get("Item") or {}
            return int(old["first_seen"]["N"])
        return now
