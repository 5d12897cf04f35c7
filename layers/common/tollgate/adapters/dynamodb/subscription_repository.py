"""The subscription projection in DynamoDB, written only through watermark-conditional updates.

Items (see docs/data-model.md): ``CUSTOMER#{customer_id}`` / ``SUBSCRIPTION#{id}`` holds one subscription,
``CUSTOMER#{customer_id}`` / ``ENTITLEMENTS`` the customer's active feature lookup keys, and the customer's
``USER`` row (owned by the customer directory) names the user. One partition query reads all three.

Each aspect of an item has its own watermark, because its events carry different snapshots: the subscription
object (``watermark``), its latest invoice (``invoice_watermark``) and the entitlement summary (``watermark`` on
the ENTITLEMENTS item). A write applies only when it is newer than what is stored; the old item comes back with
the answer, so callers learn the transition (for domain events) without an extra read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.access import AccessPolicy, pick_current
from tollgate.domain.outbox import (
    TRANSITION_FIELDS,
    TRANSITION_FIELDS_ATTRIBUTE,
    encode_entry_head,
    entry_attribute,
    pending_in,
)
from tollgate.domain.subscriptions import (
    ENTITLEMENTS_SK,
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
        states = []
        for item in items:
            if item["sk"].startswith(SUBSCRIPTION_RECORD_PREFIX) and item.get("status") in SUBSCRIPTION_STATUSES:
                states.append(state_from_item(item, user_id=user_id, features=features))
        return states

    def current_for_customer(self, customer_id: str) -> SubscriptionState | None:
        return pick_current(self.for_customer(customer_id), int(self._clock()), self._policy)

    def write_if_newer(self, write: StateWrite, *, publish_by: int | None = None) -> WriteResult:
        """``publish_by``: for a subscription write, store its outbox entry (tollgate.domain.outbox) in the
        same UpdateItem, owned by an attempt that ends then. None writes no entry (nothing will be announced)."""
        params = update_params(self._table, write, now=int(self._clock()), publish_by=publish_by)
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

    def clear_outbox(
        self, customer_id: str, sort_key: str, *, settle: Mapping[str, int], remove: Sequence[str]
    ) -> None:
        """Shrink published entries of the current second to markers (``settle``: event id -> created) and remove
        the rest (``remove``). Both are idempotent, so retries are safe."""
        names: dict[str, str] = {}
        values: dict[str, AttributeValueTypeDef] = {}
        sets, removes = [], []
        for i, (event_id, created) in enumerate(sorted(settle.items())):
            names[f"#s{i}"], values[f":s{i}"] = entry_attribute(event_id), {"L": [{"N": str(created)}]}
            sets.append(f"#s{i} = :s{i}")
        for i, event_id in enumerate(sorted(set(remove) - set(settle))):
            names[f"#r{i}"] = entry_attribute(event_id)
            removes.append(f"#r{i}")
        if not names:
            return
        expression = " ".join(
            part
            for part in ("SET " + ", ".join(sets) if sets else "", "REMOVE " + ", ".join(removes) if removes else "")
            if part
        )
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": customer_pk(customer_id)}, "sk": {"S": sort_key}},
            "UpdateExpression": expression,
            # Never create an item that holds nothing but a key.
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
        }
        if values:
            params["ExpressionAttributeValues"] = values
        try:
            with aws_errors("subscriptions.clear_outbox"):
                self._client.update_item(**params)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def outbox_pending(self, customer_id: str, sort_key: str, event_id: str) -> bool:
        """Whether the event's entry on the item still waits to be published (a marker does not)."""
        with aws_errors("subscriptions.outbox_read"):
            answer = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": customer_pk(customer_id)}, "sk": {"S": sort_key}},
                ProjectionExpression="#ob",
                ExpressionAttributeNames={"#ob": entry_attribute(event_id)},
                ConsistentRead=True,
            )
        item = from_dynamo(answer.get("Item") or {})
        return any(p.event_id == event_id for p in pending_in(item))

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


#: An invoice write also carries its invoice's ``created``: a later event about an older invoice (last month's,
#: paid late) must not replace the latest invoice shown.
INVOICE_CREATED = "latest_invoice_created"


def _older_invoice(write: StateWrite, current: Mapping[str, Any]) -> bool:
    mine, stored = write.fields.get(INVOICE_CREATED), current.get(INVOICE_CREATED)
    return write.aspect == "invoice" and isinstance(mine, int) and isinstance(stored, int) and stored > mine


def classify_rejection(write: StateWrite, current: Mapping[str, Any]) -> WriteOutcome:
    if _older_invoice(write, current):
        return WriteOutcome.STALE
    stored_raw = current.get(WATERMARK_ATTRIBUTE[write.aspect])
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


def update_params(table: str, write: StateWrite, now: int, publish_by: int | None = None) -> dict[str, Any]:
    """A conditional UpdateItem: SET the given fields (REMOVE the None ones) if the watermark is newer, plus the
    write's outbox entry when it is a subscription write owned by an attempt that ends at ``publish_by``."""
    wm_attr = WATERMARK_ATTRIBUTE[write.aspect]
    names: dict[str, str] = {"#wm": wm_attr, "#updated_at": "updated_at"}
    values: dict[str, AttributeValueTypeDef] = {
        ":wm": {"S": write.watermark.encode()},
        ":now": {"N": str(now)},
    }
    sets = ["#wm = :wm", "#updated_at = :now"]
    removes: list[str] = []
    for i, (name, value) in enumerate(sorted(write.fields.items())):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            values[f":f{i}"] = to_attribute(value)
            sets.append(f"#f{i} = :f{i}")
    if write.aspect == "subscription":
        # The transition's before and after, stored with the state itself: published even if this attempt dies.
        entry_sets, entry_names, entry_values = outbox_entry_update(
            write.watermark.event_id, write.watermark.created, publish_by, write.fields
        )
        sets += entry_sets
        names.update(entry_names)
        values.update(entry_values)
    if write.watermark.rank == Watermark.SNAPSHOT:
        # Strictly older second only: a same-second state is a tie the caller settles by fetching the object.
        values[":bound"] = {"S": write.watermark.second_floor()}
    else:
        # A fetched object replaces anything up to and including its own second.
        values[":bound"] = {"S": f"{write.watermark.created:012d}#{Watermark.FETCHED + 1}"}
    condition = "attribute_not_exists(#wm) OR (#wm < :bound AND #wm <> :wm)"
    invoice_created = write.fields.get(INVOICE_CREATED)
    if write.aspect == "invoice" and isinstance(invoice_created, int):
        names["#ic"], values[":ic"] = INVOICE_CREATED, {"N": str(invoice_created)}
        condition = f"({condition}) AND (attribute_not_exists(#ic) OR #ic <= :ic)"
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return {
        "TableName": table,
        "Key": {"pk": {"S": customer_pk(write.customer_id)}, "sk": {"S": write.sort_key}},
        "UpdateExpression": expression,
        # Never the same watermark twice: a retry of a committed write is ALREADY_APPLIED, not a second change.
        "ConditionExpression": condition,
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


def outbox_entry_update(
    event_id: str, created: int, until: int | None, fields: Mapping[str, Any]
) -> tuple[list[str], dict[str, str], dict[str, AttributeValueTypeDef]]:
    """The SET actions, names and values a subscription write merges into its UpdateItem: the transition fields
    always, and the write's outbox entry when an attempt ending at ``until`` will publish it.

    A write that leaves out a transition field (a deleted object: status and gone only) records it as absent."""
    after = [_outbox_value(fields.get(name)) for name in TRANSITION_FIELDS]
    names = {"#tracked": TRANSITION_FIELDS_ATTRIBUTE}
    values: dict[str, AttributeValueTypeDef] = {":ob_after": {"L": after}}
    sets = ["#tracked = :ob_after"]
    if until is not None:
        names["#ob"] = entry_attribute(event_id)
        values[":ob_head"] = {"L": [_outbox_value(v) for v in encode_entry_head(created, until, fields)]}
        values[":ob_untracked"] = {"L": [{"NULL": True} for _ in TRANSITION_FIELDS]}
        # list_append reads the item as it was: the entry ends with the transition fields before this write.
        sets.insert(0, "#ob = list_append(:ob_head, if_not_exists(#tracked, :ob_untracked))")
    return sets, names, values


def _outbox_value(value: Any) -> AttributeValueTypeDef:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}
