"""Pending subscription transitions, kept on the subscription item until their domain events are out.

A domain event for a subscription change (``subscription.activated``, ``.past_due``...) is derived from the state
before and after a write, and the state before is only known to the write itself. If the attempt that committed
the write dies before publishing, and a newer event of the same subscription commits first, the retry finds a
newer state (STALE) and could no longer tell what changed. So every subscription write also stores, in the same
conditional ``UpdateItem``, one outbox entry for its Stripe event (a transactional outbox inside one item):

- ``tracked`` = the fields a transition is judged on (``TRACKED_FIELDS``), as the write leaves them;
- ``outbox#{event_id}`` = ``[created, until, *after, *before]``: the event's ``created`` second, ``until`` (the
  end of the invocation that wrote it, after which nobody is still publishing it), the tracked fields after the
  write, and ``tracked`` as the item held it just before the write (``list_append`` reads the old item). One
  list attribute of about 100 bytes, so a few entries keep the item under one write unit.

The attempt that wrote an entry publishes its transition and then settles the entry. Whoever finds an entry whose
writer's time is over (the event's own retry, or any later write of the same subscription) publishes and settles
it. An entry whose before and after make no transition needs no publishing: it is settled as it is.

A settled entry of the item's current second stays, shrunk to ``[created]`` (a *marker*): it tells a redelivery
whose write ties with a later same-second state that its event was applied already, so it does not fetch and
write the object a second time. Settled entries of earlier seconds can never meet a tie and are removed with the
next removal on that item, or once ``GARBAGE_LIMIT`` have piled up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tollgate.domain_events import DomainEvent, domain_event, subscription_transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: Fields whose change makes a domain event (see tollgate.domain_events.subscription_transition).
TRACKED_FIELDS = ("status", "gone", "cancel_at_period_end", "price_id", "quantity")

TRACKED_ATTRIBUTE = "tracked"
ENTRY_PREFIX = "outbox#"

#: Garbage entries (writes that changed nothing notable) an item may hold before a write spends a call removing
#: them: few enough that the item stays near one write unit.
GARBAGE_LIMIT = 3

_HEAD = 2  # created, until


def entry_attribute(event_id: str) -> str:
    return f"{ENTRY_PREFIX}{event_id}"


def entry_update(
    event_id: str, created: int, until: int | None, fields: Mapping[str, Any]
) -> tuple[list[str], dict[str, str], dict[str, AttributeValueTypeDef]]:
    """The SET actions, names and values a subscription write merges into its UpdateItem: ``tracked`` always, and
    the entry when an attempt ending at ``until`` will publish it.

    A write that leaves out a tracked field (a deleted object: status and gone only) records it as absent."""
    after = [_attribute(fields.get(name)) for name in TRACKED_FIELDS]
    names = {"#tracked": TRACKED_ATTRIBUTE}
    values: dict[str, AttributeValueTypeDef] = {":ob_after": {"L": after}}
    sets = ["#tracked = :ob_after"]
    if until is not None:
        head: list[AttributeValueTypeDef] = [{"N": str(created)}, {"N": str(until)}]
        names["#ob"] = entry_attribute(event_id)
        values[":ob_head"] = {"L": head + after}
        values[":ob_untracked"] = {"L": [{"NULL": True} for _ in TRACKED_FIELDS]}
        sets.insert(0, "#ob = list_append(:ob_head, if_not_exists(#tracked, :ob_untracked))")
    return sets, names, values


def _attribute(value: Any) -> AttributeValueTypeDef:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


@dataclass(frozen=True, slots=True)
class PendingTransition:
    """One outbox entry read back from an item (plain values, as ``repository.from_dynamo`` returns them)."""

    event_id: str
    customer_id: str
    subscription_id: str
    created: int
    until: int
    before: Mapping[str, Any]
    after: Mapping[str, Any]

    def announcement(self) -> DomainEvent | None:
        """The domain event this write caused, or None (the write changed nothing notable: garbage)."""
        return transition_event(
            self.event_id, self.created, self.customer_id, self.subscription_id, self.before, self.after
        )

    def abandoned(self, now: float) -> bool:
        """The attempt that wrote it has ended: nobody else is publishing it."""
        return now >= self.until


def transition_event(  # noqa: PLR0917 - the facts of one transition, named where they are built
    event_id: str,
    created: int,
    customer_id: str,
    subscription_id: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> DomainEvent | None:
    name = subscription_transition(before, after)
    if name is None:
        return None
    return domain_event(
        name,
        event_id,
        created,
        customer_id=customer_id,
        subscription_id=subscription_id,
        data={"status": after.get("status"), "previous_status": before.get("status")},
    )


def entries_in(item: Mapping[str, Any]) -> dict[str, int]:
    """Every entry an item holds, pending or settled: event id -> its ``created`` second."""
    found = {}
    for attribute, entry in item.items():
        if attribute.startswith(ENTRY_PREFIX) and isinstance(entry, list) and entry:
            found[attribute.removeprefix(ENTRY_PREFIX)] = int(entry[0])
    return found


def pending_in(item: Mapping[str, Any]) -> list[PendingTransition]:
    """The outbox entries an item holds, oldest first (a malformed entry is skipped, never fatal)."""
    if not item:
        return []
    customer_id = str(item.get("pk", "")).removeprefix("CUSTOMER#")
    subscription_id = str(item.get("sk", "")).removeprefix("SUBSCRIPTION#")
    width = len(TRACKED_FIELDS)
    pending = []
    for attribute, entry in item.items():
        if not attribute.startswith(ENTRY_PREFIX) or not isinstance(entry, list) or len(entry) != _HEAD + 2 * width:
            continue
        after, before = entry[_HEAD : _HEAD + width], entry[_HEAD + width :]
        pending.append(
            PendingTransition(
                event_id=attribute.removeprefix(ENTRY_PREFIX),
                customer_id=customer_id,
                subscription_id=subscription_id,
                created=int(entry[0]),
                until=int(entry[1]),
                before=dict(zip(TRACKED_FIELDS, before, strict=True)),
                after=dict(zip(TRACKED_FIELDS, after, strict=True)),
            )
        )
    return sorted(pending, key=lambda p: (p.created, p.event_id))


def tracked(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: item.get(name) for name in TRACKED_FIELDS}
