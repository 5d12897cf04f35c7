"""The customer directory: which Stripe customer belongs to which user, and creating exactly one per user.

The user is the JWT ``sub``. The mapping is stored both ways in the billing table (``USER#{user_id}``/``CUSTOMER``
and ``CUSTOMER#{customer_id}``/``USER``), written together in one transaction. A customer is never looked up by
email: emails change and are not unique, the JWT ``sub`` is.

First checkout for a new user (``ensure_customer``): a conditional DynamoDB claim elects one creator; the creator
calls Stripe with the deterministic idempotency key ``customer:{user_id}``, so even a request that gives up waiting
for the creator and calls Stripe itself gets the same customer back (Stripe replays the first response, or answers
409 while it is in flight, which the SDK retries).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.observability import logger

if TYPE_CHECKING:
    import stripe
    from mypy_boto3_dynamodb import DynamoDBClient
    from stripe.params import CustomerCreateParams

USER_PREFIX = "USER#"
CUSTOMER_PREFIX = "CUSTOMER#"
USER_SORT_KEY = "CUSTOMER"  # sk of the user -> customer item
CUSTOMER_SORT_KEY = "USER"  # sk of the customer -> user item

#: How long a creation claim is honoured before another request may take it over (the creator died).
DEFAULT_CLAIM_LEASE_SECONDS = 30


class CustomerDirectory(Protocol):
    """User <-> Stripe customer mapping."""

    def customer_for_user(self, user_id: str) -> str | None: ...

    def user_for_customer(self, customer_id: str) -> str | None: ...

    def link(self, user_id: str, customer_id: str) -> None:
        """Store the mapping both ways. Idempotent; a user or customer already linked elsewhere is a Conflict."""
        ...

    def claim_creation(self, user_id: str) -> bool:
        """Try to become the one request that creates this user's customer. True when the claim is ours."""
        ...


class CustomerGateway(Protocol):
    """The Stripe side of customer creation."""

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str: ...


def customer_idempotency_key(user_id: str) -> str:
    """Deterministic per user: every attempt, by any request, to create this user's customer is the same call."""
    return f"customer:{user_id}"


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

    def customer_for_user(self, user_id: str) -> str | None:
        with aws_errors("directory.customer_for_user"):
            item = self._client.get_item(TableName=self._table, Key=self._user_key(user_id), ConsistentRead=True).get(
                "Item"
            )
        value = (item or {}).get("customer_id", {}).get("S")
        return value if isinstance(value, str) and value else None

    def user_for_customer(self, customer_id: str) -> str | None:
        with aws_errors("directory.user_for_customer"):
            item = self._client.get_item(
                TableName=self._table, Key=self._customer_key(customer_id), ConsistentRead=True
            ).get("Item")
        value = (item or {}).get("user_id", {}).get("S")
        return value if isinstance(value, str) and value else None

    def link(self, user_id: str, customer_id: str) -> None:
        now = {"N": str(int(self._clock()))}
        items: Any = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._user_key(user_id),
                    "UpdateExpression": "SET customer_id = :c, created_at = if_not_exists(created_at, :now) "
                    "REMOVE claim_expires_at",
                    "ConditionExpression": "attribute_not_exists(customer_id) OR customer_id = :c",
                    "ExpressionAttributeValues": {":c": {"S": customer_id}, ":now": now},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._customer_key(customer_id),
                    "UpdateExpression": "SET user_id = :u, created_at = if_not_exists(created_at, :now)",
                    "ConditionExpression": "attribute_not_exists(user_id) OR user_id = :u",
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

    def claim_creation(self, user_id: str) -> bool:
        now = int(self._clock())
        try:
            with aws_errors("directory.claim"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._user_key(user_id),
                    UpdateExpression="SET claim_expires_at = :expires, created_at = if_not_exists(created_at, :now)",
                    # New item, or an abandoned claim (its creator died before linking).
                    ConditionExpression="attribute_not_exists(pk) OR "
                    "(attribute_not_exists(customer_id) AND claim_expires_at < :now)",
                    ExpressionAttributeValues={":expires": {"N": str(now + self._lease)}, ":now": {"N": str(now)}},
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_deleted(self, customer_id: str) -> None:
        """Record that Stripe deleted the customer (webhook ``customer.deleted``); only an existing mapping."""
        try:
            with aws_errors("directory.mark_deleted"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._customer_key(customer_id),
                    UpdateExpression="SET deleted = :t, deleted_at = if_not_exists(deleted_at, :now)",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":now": {"N": str(int(self._clock()))}},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # an unknown customer (never linked) has nothing to mark


class StripeCustomerGateway:
    """Creates customers with the app's user id in metadata and the verified email, if any."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str:
        from tollgate.adapters.stripe_client import stripe_errors

        params: CustomerCreateParams = {"metadata": {"app_user_id": user_id}}
        if email:
            params["email"] = email
        with stripe_errors("customers.create"):
            customer = self._client.v1.customers.create(params=params, options={"idempotency_key": idempotency_key})
        return str(customer.id)


@dataclass(frozen=True, slots=True)
class CreationWait:
    """How a request that lost the creation claim waits for the winner before calling Stripe itself."""

    total_seconds: float = 3.0
    poll_seconds: float = 0.1


def ensure_customer(
    directory: CustomerDirectory,
    gateway: CustomerGateway,
    user_id: str,
    email: str | None,
    *,
    wait: CreationWait = CreationWait(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The caller's Stripe customer id, creating it (exactly once) on first need."""
    existing = directory.customer_for_user(user_id)
    if existing:
        return existing
    if not directory.claim_creation(user_id):
        deadline = clock() + wait.total_seconds
        while clock() < deadline:
            sleep(wait.poll_seconds)
            existing = directory.customer_for_user(user_id)
            if existing:
                return existing
        # The creator is slow or gone: the shared idempotency key makes our create return its customer.
        logger.info("customer creation wait elapsed", outcome="creating with shared key")
    customer_id = gateway.create_customer(user_id, email, customer_idempotency_key(user_id))
    directory.link(user_id, customer_id)
    logger.info("customer linked", customer_id=customer_id)
    return customer_id
