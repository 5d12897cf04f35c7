"""The subscription projection in DynamoDB, written only through watermark-conditional updates.

Items (see docs/data-model.md), all under the customer's partition so one query reads them together:
``CUSTOMER#{customer_id}`` / ``SUBSCRIPTION#{id}`` holds one subscription, ``INVOICE#{invoice_id}#{event_id}`` one
Stripe event about a subscription invoice, ``ENTITLEMENTS`` the customer's active feature lookup keys, and the
``USER`` row (owned by the customer directory) names the user.

Each item has its own ``watermark``; a write applies only when it is newer than what is stored, and the old item
comes back with the answer. Invoice events never compete: each is its own item (a late event about last month's
invoice, or an older payment attempt, is announced by its own write), and the latest invoice shown is the newest
of them. Each applied write is one change on the table's stream, carrying the domain events it announces
(tollgate.domain.changes): the webhook's one write per event is also its publication.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.access import AccessPolicy, pick_current
from tollgate.domain.changes import ANNOUNCEMENTS_ATTRIBUTE, encode_announcements
from tollgate.domain.subscriptions import (
    APPLIED_EVENTS_ATTRIBUTE,
    ENTITLEMENTS_SK,
    INVOICE_RECORD_PREFIX,
    SUBSCRIPTION_RECORD_PREFIX,
    SUBSCRIPTION_STATUSES,
    WATERMARK_ATTRIBUTE,
    FieldValue,
    StateWrite,
    SubscriptionState,
    Watermark,
    WriteOutcome,
    WriteResult,
    subscription_sk,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def customer_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


#: Sort key of the ``SUBSCRIPTION#{id}`` item naming the subscription's customer (pricing-plan subscriptions).
OWNER_SK = "OWNER"
USER_SK = "USER"


class DynamoSubscriptionRepository:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Any = time.time,
        access_policy: AccessPolicy | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        #: Only used to choose among several subscriptions; callers still decide access with their own policy.
        self._policy = access_policy or AccessPolicy()

    def for_customer(self, customer_id: str) -> list[SubscriptionState]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": customer_pk(customer_id)}},
            "ConsistentRead": True,
        }
        with aws_errors("subscriptions.query"):
            while True:
                page = self._client.query(**kwargs)
                items.extend(from_dynamo(i) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        user_id = next((i.get("user_id") for i in items if i["sk"] == USER_SK), None)
        features = next((tuple(i.get("features", ())) for i in items if i["sk"] == ENTITLEMENTS_SK), ())
        invoices = latest_invoices(i for i in items if i["sk"].startswith(INVOICE_RECORD_PREFIX))
        states = []
        for item in items:
            if item["sk"].startswith(SUBSCRIPTION_RECORD_PREFIX) and item.get("status") in SUBSCRIPTION_STATUSES:
                subscription_id = item["sk"].removeprefix(SUBSCRIPTION_RECORD_PREFIX)
                merged = with_latest_invoice(item, invoices.get(subscription_id))
                states.append(state_from_item(merged, user_id=user_id, features=features))
        return states

    def current_for_customer(self, customer_id: str) -> SubscriptionState | None:
        return pick_current(self.for_customer(customer_id), int(self._clock()), self._policy)

    def write_if_newer(self, write: StateWrite, *, after_tie: bool = False) -> WriteResult:
        """``after_tie``: the write re-states an object fetched because a same-second write tied; it joins that
        second's applied events instead of starting them."""
        params = update_params(self._table, write, now=int(self._clock()), after_tie=after_tie)
        try:
            with aws_errors("subscriptions.write"):
                answer = self._client.update_item(**params, ReturnValues="ALL_OLD")
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raw: Any = exc.response.get("Item") or {}
            current = from_dynamo(raw) if raw else {}
            return WriteResult(classify_rejection(write, current), current)
        return WriteResult(WriteOutcome.APPLIED, from_dynamo(answer.get("Attributes", {})))

    def remember_owner(self, subscription_id: str, customer_id: str) -> None:
        """``SUBSCRIPTION#{id}`` / ``OWNER``: the customer a subscription was projected for (idempotent put)."""
        with aws_errors("subscriptions.remember_owner"):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": subscription_sk(subscription_id)},
                    "sk": {"S": OWNER_SK},
                    "customer_id": {"S": customer_id},
                },
            )

    def owner_of(self, subscription_id: str) -> str | None:
        with aws_errors("subscriptions.owner_of"):
            answer = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": subscription_sk(subscription_id)}, "sk": {"S": OWNER_SK}},
                ConsistentRead=True,
            )
        owner = (answer.get("Item") or {}).get("customer_id", {}).get("S")
        return str(owner) if owner else None


def latest_invoices(items: Any) -> dict[str, dict[str, Any]]:
    """Per subscription, its newest invoice event item (by the invoice's ``created``, then the event's watermark)."""
    newest: dict[str, dict[str, Any]] = {}
    for item in items:
        subscription_id = item.get("subscription_id")
        if not isinstance(subscription_id, str):
            continue
        seen = newest.get(subscription_id)
        if seen is None or _invoice_order(item) > _invoice_order(seen):
            newest[subscription_id] = item
    return newest


def _invoice_order(item: Mapping[str, Any]) -> tuple[int, str]:
    created = item.get("created")
    return (created if isinstance(created, int) else 0, str(item.get(WATERMARK_ATTRIBUTE, "")))


def with_latest_invoice(item: dict[str, Any], invoice: Mapping[str, Any] | None) -> dict[str, Any]:
    """The subscription item with its latest invoice: the newer of the invoice items and what a fetch of the
    subscription (reconcile, the success page) stored on the item itself."""
    if invoice is None:
        return item
    stored_created = item.get("latest_invoice_created")
    created = invoice.get("created")
    if isinstance(stored_created, int) and isinstance(created, int) and stored_created > created:
        return item
    return {
        **item,
        "latest_invoice_id": invoice.get("invoice_id"),
        "latest_invoice_status": invoice.get("status"),
    }


def classify_rejection(write: StateWrite, current: Mapping[str, Any]) -> WriteOutcome:
    stored_raw = current.get(WATERMARK_ATTRIBUTE)
    if not isinstance(stored_raw, str):
        # Our condition can only fail on an item holding a watermark: anything else is a fault, never "stale"
        # (which would acknowledge the event without its state).
        raise errors.PersistenceUnavailable("unexpected conditional failure")
    stored = Watermark.decode(stored_raw)
    if stored == write.watermark:
        return WriteOutcome.ALREADY_APPLIED
    if write.watermark.rank == Watermark.SNAPSHOT and stored.created == write.watermark.created:
        return WriteOutcome.TIE
    return WriteOutcome.STALE


def update_params(table: str, write: StateWrite, now: int, *, after_tie: bool = False) -> dict[str, Any]:
    """A conditional UpdateItem: SET the given fields (REMOVE the None ones) if the watermark is newer, with the
    write's announcements (or none), and the event among the second's applied events."""
    names: dict[str, str] = {
        "#wm": WATERMARK_ATTRIBUTE,
        "#updated_at": "updated_at",
        "#applied": APPLIED_EVENTS_ATTRIBUTE,
        "#ann": ANNOUNCEMENTS_ATTRIBUTE,
    }
    values: dict[str, AttributeValueTypeDef] = {
        ":wm": {"S": write.watermark.encode()},
        ":now": {"N": str(now)},
        ":me": {"L": [{"S": write.watermark.event_id}]},
    }
    sets = ["#wm = :wm", "#updated_at = :now"]
    removes: list[str] = []
    if after_tie:
        values[":none"] = {"L": []}
        sets.append("#applied = list_append(if_not_exists(#applied, :none), :me)")
    else:
        # A snapshot write applies only over an older second, and a fetch that did not follow a tie is the first
        # of its run: either starts the list.
        sets.append("#applied = :me")
    if write.announcements:
        values[":ann"] = {"S": encode_announcements(write.announcements)}
        sets.append("#ann = :ann")
    else:
        removes.append("#ann")
    for i, (name, value) in enumerate(sorted(write.fields.items())):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            values[f":f{i}"] = to_attribute(value)
            sets.append(f"#f{i} = :f{i}")
    if write.watermark.rank == Watermark.SNAPSHOT:
        # Strictly older second only: a same-second state is a tie the caller settles by fetching the object.
        values[":bound"] = {"S": write.watermark.second_floor()}
    else:
        # A fetched object replaces anything up to and including its own second.
        values[":bound"] = {"S": f"{write.watermark.created:012d}#{Watermark.FETCHED + 1}"}
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return {
        "TableName": table,
        "Key": {"pk": {"S": customer_pk(write.customer_id)}, "sk": {"S": write.sort_key}},
        "UpdateExpression": expression,
        # Never the same watermark twice: a retry of a committed write is ALREADY_APPLIED, not a second change.
        "ConditionExpression": "attribute_not_exists(#wm) OR (#wm < :bound AND #wm <> :wm)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def to_attribute(value: FieldValue) -> AttributeValueTypeDef:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, tuple):
        return {"L": [{"S": v} for v in value]}
    raise TypeError(f"unsupported attribute type {type(value).__name__}")


def from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in item.items()}


def _plain(value: Mapping[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    if kind == "N":
        return int(raw) if raw.lstrip("-").isdigit() else float(raw)
    if kind == "L":
        return [_plain(v) for v in raw]
    if kind == "M":
        return {k: _plain(v) for k, v in raw.items()}
    if kind == "SS":
        return sorted(raw)
    return None if kind == "NULL" else raw  # S and BOOL come back as they are


_STATE_FIELDS = frozenset(SubscriptionState.model_fields) - {"subscription_id", "customer_id", "user_id", "features"}


def state_from_item(
    item: Mapping[str, Any], *, user_id: str | None = None, features: tuple[str, ...] = ()
) -> SubscriptionState:
    values = {k: v for k, v in item.items() if k in _STATE_FIELDS}
    return SubscriptionState(
        subscription_id=item["sk"].removeprefix(SUBSCRIPTION_RECORD_PREFIX),
        customer_id=item["pk"].removeprefix("CUSTOMER#"),
        user_id=user_id,
        features=features,
        **values,
    )
