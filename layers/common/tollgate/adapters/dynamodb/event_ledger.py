"""The event ledger: at most one worker applies a Stripe event, and an event is "seen" only once it committed.

Events that need a Stripe fetch take the leased path: ``claim`` writes an IN_PROGRESS lease that expires within
the invocation's remaining time, so a crashed or timed out attempt blocks retries only until its lease lapses.
``complete`` flips the lease to COMPLETED (kept 35 days: Stripe retries for 3 and can replay for 30) and stores
the event's announcements in that same write, for the table's stream to publish. ``release`` deletes our own lease
after a failure. Snapshot events whose one state write is their commit skip the ledger; an event whose
announcements found no state write to ride in (none applied, or none to make) records them with ``announce``, a
put that happens once per event id (see tollgate.services.webhook).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tollgate import errors
from tollgate.adapters.aws import aws_errors, error_code
from tollgate.domain.changes import ANNOUNCEMENTS_ATTRIBUTE, encode_announcements
from tollgate.ports.storage import EventClaim, EventClaimStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tollgate.domain.events import DomainEvent

RETENTION_SECONDS = 35 * 86_400


def event_key(event_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}


class DynamoEventLedger:
    def __init__(self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def claim(self, event_id: str, event_type: str, lease_until: int) -> EventClaim:
        now = int(self._clock())
        token = uuid.uuid4().hex
        try:
            with aws_errors("ledger.claim"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **event_key(event_id),
                        "status": {"S": "IN_PROGRESS"},
                        "lease_token": {"S": token},
                        "lease_expires_at": {"N": str(lease_until)},
                        "type": {"S": event_type},
                        "claimed_at": {"N": str(now)},
                        "expires_at": {"N": str(now + RETENTION_SECONDS)},
                    },
                    # New, or an IN_PROGRESS lease whose holder ran out of time.
                    ConditionExpression="attribute_not_exists(pk) OR (#s = :ip AND lease_expires_at < :now)",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":ip": {"S": "IN_PROGRESS"}, ":now": {"N": str(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item") or {}
            if old.get("status", {}).get("S") == "COMPLETED":
                return EventClaim(EventClaimStatus.COMPLETED)
            return EventClaim(EventClaimStatus.IN_PROGRESS)
        return EventClaim(EventClaimStatus.CLAIMED, token)

    def complete(self, event_id: str, token: str, announcements: Sequence[DomainEvent] = ()) -> bool:
        now = int(self._clock())
        values: dict[str, Any] = {
            ":done": {"S": "COMPLETED"},
            ":now": {"N": str(now)},
            ":exp": {"N": str(now + RETENTION_SECONDS)},
            ":token": {"S": token},
        }
        update = "SET #s = :done, completed_at = :now, expires_at = :exp"
        if announcements:
            values[":ann"] = {"S": encode_announcements(announcements)}
            update += f", {ANNOUNCEMENTS_ATTRIBUTE} = :ann"
        try:
            with aws_errors("ledger.complete"):
                self._client.update_item(
                    TableName=self._table,
                    Key=event_key(event_id),
                    UpdateExpression=update + " REMOVE lease_token, lease_expires_at",
                    ConditionExpression="lease_token = :token",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=values,
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False  # our lease lapsed and another attempt took over; the state write was idempotent
        return True

    def release(self, event_id: str, token: str) -> None:
        try:
            with aws_errors("ledger.release"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=event_key(event_id),
                    ConditionExpression="lease_token = :token",
                    ExpressionAttributeValues={":token": {"S": token}},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def status(self, event_id: str) -> EventClaimStatus | None:
        with aws_errors("ledger.status"):
            item = self._client.get_item(TableName=self._table, Key=event_key(event_id), ConsistentRead=True).get(
                "Item"
            )
        if not item:
            return None
        return EventClaimStatus.COMPLETED if item["status"].get("S") == "COMPLETED" else EventClaimStatus.IN_PROGRESS

    def announce(self, event_id: str, event_type: str, announcements: Sequence[DomainEvent]) -> bool:
        """Record a completed event with its announcements, once: False when the event was recorded before."""
        now = int(self._clock())
        try:
            with aws_errors("ledger.announce"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **event_key(event_id),
                        "status": {"S": "COMPLETED"},
                        "type": {"S": event_type},
                        "completed_at": {"N": str(now)},
                        "expires_at": {"N": str(now + RETENTION_SECONDS)},
                        ANNOUNCEMENTS_ATTRIBUTE: {"S": encode_announcements(announcements)},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item") or {}
            if old.get("status", {}).get("S") != "COMPLETED":
                # Only a completed record of this event can fail the condition: anything else is a fault, never
                # "announced already" (which would acknowledge the event with its announcements lost).
                raise errors.PersistenceUnavailable("unexpected conditional failure") from None
            return False
        return True
