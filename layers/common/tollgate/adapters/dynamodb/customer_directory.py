"""The customer directory: which Stripe customer belongs to which user, and creating exactly one per user.

The user is the JWT ``sub``. The mapping is stored both ways in the billing table (``USER#{user_id}``/``CUSTOMER``
and ``CUSTOMER#{customer_id}``/``USER``), written together in one transaction. A customer is never looked up by
email: emails change and are not unique, the JWT ``sub`` is.

First checkout for a new user (``ensure_customer``): a conditional DynamoDB claim elects one creator; the creator
calls Stripe with the idempotency key ``customer:{user_id}:{generation}``, so even a request that gives up waiting
for the creator and calls Stripe itself gets the same customer back (Stripe replays the first response, or answers
409 while it is in flight, which the SDK retries).

The generation lives on the user's item. Stripe replays a key's first response for 24 h, even a 500, and refuses
the key with different parameters (``idempotency_error``, e.g. once the email became verified): a fixed key would
fail every checkout of that user for a day. When a create fails that way, the request that used generation ``n``
moves the item to ``n + 1`` with a conditional update (only one request can), so the caller's retry gets a fresh
key while concurrent requests still share one key per generation.

A customer deleted in Stripe (webhook ``customer.deleted``, or Stripe answering ``resource_missing`` for it) is
marked on both items. The user then counts as having no customer: their next checkout replaces the mapping (one
conditional update that also moves the generation on, so the old key cannot replay the deleted customer), creates a
new customer and links it; the old ``CUSTOMER#`` item stays, ``deleted``, as history.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.customers import CreationClaim, UserRecord
from tollgate.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER_PREFIX = "USER#"
CUSTOMER_PREFIX = "CUSTOMER#"
USER_SORT_KEY = "CUSTOMER"  # sk of the user -> customer item
CUSTOMER_SORT_KEY = "USER"  # sk of the customer -> user item

#: How long a creation claim is honoured before another request may take it over (the creator died).
DEFAULT_CLAIM_LEASE_SECONDS = 30


class DynamoCustomerDirectory:
    """The directory on the single billing table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        claim_lease_seconds: int = DEFAULT_CLAIM_LEASE_SECONDS,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._lease = claim_lease_seconds

    @staticmethod
    def _user_key(user_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"{USER_PREFIX}{user_id}"}, "sk": {"S": USER_SORT_KEY}}

    @staticmethod
    def _customer_key(customer_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"{CUSTOMER_PREFIX}{customer_id}"}, "sk": {"S": CUSTOMER_SORT_KEY}}

    def lookup(self, user_id: str) -> UserRecord:
        with aws_errors("directory.customer_for_user"):
            item = self._client.get_item(TableName=self._table, Key=self._user_key(user_id), ConsistentRead=True).get(
                "Item"
            )
        return _user_record(item or {})

    def customer_for_user(self, user_id: str) -> str | None:
        return self.lookup(user_id).live_customer_id

    def user_for_customer(self, customer_id: str) -> str | None:
        with aws_errors("directory.user_for_customer"):
            item = self._client.get_item(
                TableName=self._table, Key=self._customer_key(customer_id), ConsistentRead=True
            ).get("Item")
        value = (item or {}).get("user_id", {}).get("S")
        return value if isinstance(value, str) and value else None

    def link(self, user_id: str, customer_id: str, *, subscribed: bool = False) -> None:
        now = {"N": str(int(self._clock()))}
        # A subscription's link also records, for good, that the user had one (the trial policy reads it).
        subscribed_set = ", subscribed_at = if_not_exists(subscribed_at, :now)" if subscribed else ""
        items: Any = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._user_key(user_id),
                    "UpdateExpression": "SET customer_id = :c, created_at = if_not_exists(created_at, :now)"
                    + subscribed_set
                    + " REMOVE claim_expires_at",
                    "ConditionExpression": "attribute_not_exists(customer_id) OR customer_id = :c",
                    "ExpressionAttributeValues": {":c": {"S": customer_id}, ":now": now},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._customer_key(customer_id),
                    "UpdateExpression": "SET user_id = :u, created_at = if_not_exists(created_at, :now)",
                    # A deleted customer is history: a stale request must not link it again.
                    "ConditionExpression": "(attribute_not_exists(user_id) OR user_id = :u) "
                    "AND attribute_not_exists(deleted)",
                    "ExpressionAttributeValues": {":u": {"S": user_id}, ":now": now},
                }
            },
        ]
        # Concurrent identical links collide as TransactionConflict; a short jittered retry settles them.
        for attempt in range(4):
            try:
                with aws_errors("directory.link"):
                    self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = [str(r.get("Code", "")) for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    logger.warning("customer link conflict", customer_id=customer_id)
                    raise errors.Conflict("the user or the customer is already linked elsewhere") from None
                if attempt == 3:
                    raise errors.PersistenceUnavailable() from None
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not security

    def claim_creation(self, user_id: str, replacing: str | None = None) -> CreationClaim:
        now = int(self._clock())
        values: dict[str, Any] = {":expires": {"N": str(now + self._lease)}, ":now": {"N": str(now)}}
        if replacing is None:
            update = "SET claim_expires_at = :expires, created_at = if_not_exists(created_at, :now)"
            # New item, a released claim (a failed create moved the generation on), or an abandoned claim (its
            # creator died before linking).
            condition = (
                "attribute_not_exists(customer_id) AND "
                "(attribute_not_exists(claim_expires_at) OR claim_expires_at < :now)"
            )
        else:
            # Unlink the deleted customer and claim in one write; the next generation's key cannot replay it.
            update = (
                "SET claim_expires_at = :expires, replaced_customer_ids = list_append("
                "if_not_exists(replaced_customer_ids, :none), :old) REMOVE customer_id, customer_deleted "
                "ADD generation :one"
            )
            condition = "customer_id = :replacing AND customer_deleted = :t"
            values |= {
                ":replacing": {"S": replacing},
                ":old": {"L": [{"S": replacing}]},
                ":none": {"L": []},
                ":one": {"N": "1"},
                ":t": {"BOOL": True},
            }
            values.pop(":now")
        try:
            with aws_errors("directory.claim"):
                answer = self._client.update_item(
                    TableName=self._table,
                    Key=self._user_key(user_id),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return CreationClaim(won=False, generation=_user_record(_old_item(exc)).generation)
            raise
        return CreationClaim(won=True, generation=_user_record(answer.get("Attributes") or {}).generation)

    def advance_generation(self, user_id: str, seen: int) -> bool:
        # Only the request that used generation ``seen`` moves it on, once; never after a customer is linked.
        seen_condition = (
            "(attribute_not_exists(generation) OR generation = :seen)" if seen == 0 else "generation = :seen"
        )
        try:
            with aws_errors("directory.advance_generation"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._user_key(user_id),
                    UpdateExpression="SET generation = :next REMOVE claim_expires_at",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(customer_id) AND "
                    + seen_condition,
                    ExpressionAttributeValues={":seen": {"N": str(seen)}, ":next": {"N": str(seen + 1)}},
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_deleted(self, customer_id: str) -> None:
        """Record that Stripe deleted the customer (webhook ``customer.deleted``, or Stripe's ``resource_missing``).

        Only an existing mapping. The customer's item keeps its user as history; the user's item is marked too (while
        it still points at this customer), so reading the user's customer stays one read. Idempotent: a retry after
        a failure between the two writes finishes the job.
        """
        try:
            with aws_errors("directory.mark_deleted"):
                answer = self._client.update_item(
                    TableName=self._table,
                    Key=self._customer_key(customer_id),
                    UpdateExpression="SET deleted = :t, deleted_at = if_not_exists(deleted_at, :now)",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":now": {"N": str(int(self._clock()))}},
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return  # an unknown customer (never linked) has nothing to mark
        user_id = (answer.get("Attributes") or {}).get("user_id", {}).get("S")
        if not user_id:
            return
        try:
            with aws_errors("directory.mark_deleted"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._user_key(user_id),
                    UpdateExpression="SET customer_deleted = :t",
                    ConditionExpression="customer_id = :c",
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":c": {"S": customer_id}},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # the user already has another customer: nothing to mark on their item

    def erase(self, user_id: str, customer_id: str | None) -> None:
        """Forget the user (an erasure request): the customer's item loses its link to the user and is marked
        deleted and erased, then the user's item goes. Idempotent, and safe to retry after a failure between the two
        writes (the customer is unlinked first, so no state ever points from a customer to an erased user)."""
        now = {"N": str(int(self._clock()))}
        if customer_id:
            try:
                with aws_errors("directory.erase"):
                    self._client.update_item(
                        TableName=self._table,
                        Key=self._customer_key(customer_id),
                        UpdateExpression="SET deleted = :t, deleted_at = if_not_exists(deleted_at, :now), "
                        "erased_at = if_not_exists(erased_at, :now) REMOVE user_id",
                        ConditionExpression="attribute_exists(pk)",
                        ExpressionAttributeValues={":t": {"BOOL": True}, ":now": now},
                    )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise  # a customer never linked has no item: nothing to unlink
        with aws_errors("directory.erase"):
            self._client.delete_item(TableName=self._table, Key=self._user_key(user_id))


def _user_record(item: dict[str, Any]) -> UserRecord:
    customer_id = item.get("customer_id", {}).get("S")
    generation = item.get("generation", {}).get("N")
    return UserRecord(
        customer_id=customer_id if isinstance(customer_id, str) and customer_id else None,
        generation=int(generation) if generation else 0,
        deleted=item.get("customer_deleted", {}).get("BOOL") is True,
        had_subscription="subscribed_at" in item,
    )


def _old_item(exc: ClientError) -> dict[str, Any]:
    return cast(dict[str, Any], cast(Any, exc.response).get("Item") or {})
