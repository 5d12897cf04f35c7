"""Previewed plan changes on the billing table, consumed exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.plan_changes import PendingChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoPendingChangeStore:
    """``PREVIEW#{token_id}``/``PREVIEW`` items; DynamoDB's TTL removes them after ``expires_at``."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _key(token_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"PREVIEW#{token_id}"}, "sk": {"S": "PREVIEW"}}

    def save(self, change: PendingChange) -> None:
        item: dict[str, Any] = {
            **self._key(change.token_id),
            "user_id": {"S": change.user_id},
            "subscription_id": {"S": change.subscription_id},
            "item_id": {"S": change.item_id},
            "plan_key": {"S": change.plan_key},
            "price_id": {"S": change.price_id},
            "quantity": {"N": str(change.quantity)},
            "proration_date": {"N": str(change.proration_date)},
            "amount_due": {"N": str(change.amount_due)},
            "currency": {"S": change.currency},
            "expires_at": {"N": str(change.expires_at)},
            "from_price_id": {"S": change.from_price_id},
            "from_quantity": {"N": str(change.from_quantity)},
        }
        with aws_errors("plan_change.save"):
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def consume(self, token_id: str, user_id: str, now: int) -> PendingChange:
        try:
            with aws_errors("plan_change.consume"):
                result = self._client.update_item(
                    TableName=self._table,
                    Key=self._key(token_id),
                    UpdateExpression="SET used_at = :now",
                    ConditionExpression="attribute_exists(pk) AND user_id = :u AND attribute_not_exists(used_at) "
                    "AND expires_at > :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}, ":u": {"S": user_id}},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = cast(Any, exc.response).get("Item") or {}
            if not old or old.get("user_id", {}).get("S") != user_id:
                raise errors.Forbidden("invalid plan change token") from None
            if "used_at" in old:
                raise errors.Conflict("this plan change was already applied") from None
            raise errors.Conflict("the preview expired: preview the change again") from None
        a = result["Attributes"]
        return PendingChange(
            token_id=token_id,
            user_id=a["user_id"]["S"],
            subscription_id=a["subscription_id"]["S"],
            item_id=a["item_id"]["S"],
            plan_key=a["plan_key"]["S"],
            price_id=a["price_id"]["S"],
            quantity=int(a["quantity"]["N"]),
            proration_date=int(a["proration_date"]["N"]),
            amount_due=int(a["amount_due"]["N"]),
            currency=a["currency"]["S"],
            expires_at=int(a["expires_at"]["N"]),
            from_price_id=a["from_price_id"]["S"],
            from_quantity=int(a["from_quantity"]["N"]),
        )

    def release(self, token_id: str) -> None:
        with aws_errors("plan_change.release"):
            self._client.update_item(TableName=self._table, Key=self._key(token_id), UpdateExpression="REMOVE used_at")
