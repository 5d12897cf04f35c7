"""Pending subscription transitions, kept on the subscription item until their domain events are out.

A domain event for a subscription change (``subscription.activated``, ``.past_due``...) is derived from the state
before and after a write, and the state before is only known to the write itself. If the attempt that committed
the write dies before publishing, and a newer event of the same subscription commits first, the retry finds a
newer state (STALE) and could no longer tell what changed. So every subscription write also stores, in the same
conditional ``UpdateItem``, one :class:`OutboxEntry` for its Stripe event (a transactional outbox inside one item):

- the item's *transition fields* (``TRANSITION_FIELDS``, stored as the attribute ``tracked``) as the write leaves
  them;
- ``outbox#{event_id}``: the event's ``created`` second, ``until`` (the end of the invocation that wrote it, after
  which nobody is still publishing it), the transition fields after the write, and as the item held them just
  before the write. Stored as one compact list of about 100 bytes (:func:`encode_entry` / :func:`decode_entry`),
  so a few entries keep the item under one write unit.

The attempt that wrote an entry publishes its transition and then *settles* the entry. Whoever finds an entry
whose writer's time is over (the event's own retry, or any later write of the same subscription) publishes and
settles it. An entry whose before and after make no transition needs no publishing: it is settled as it is.

A settled entry of the item's current second stays, shrunk to its ``created`` second (a *settled entry*): it tells
a redelivery whose write ties with a later same-second state that its event was applied already, so it does not
fetch and write the object a second time. Settled entries of earlier seconds can never meet a tie and are removed
with the next removal on that item, or once ``MAX_SETTLED_ENTRIES`` of them have piled up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tollgate.domain.events import DomainEvent, transition_event
from tollgate.domain.subscriptions import SUBSCRIPTION_RECORD_PREFIX

#: Fields whose change makes a domain event (see tollgate.domain.events.subscription_transition).
TRANSITION_FIELDS = ("status", "gone", "cancel_at_period_end", "price_id", "quantity")
#: The item attribute holding the transition fields as the last write left them.
TRANSITION_FIELDS_ATTRIBUTE = "tracked"
ENTRY_PREFIX = "outbox#"

#: Settled entries of earlier seconds (writes that changed nothing notable) an item may hold before a write spends a
#: call removing them: few enough that the item stays near one write unit.
MAX_SETTLED_ENTRIES = 3

# The stored list: [created, until, *after, *before].
_HEAD = 2


def entry_attribute(event_id: str) -> str:
    return f"{ENTRY_PREFIX}{event_id}"


def transition_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The transition fields of a state (an item, or a write's fields); a field left out is absent (None)."""
    return {name: values.get(name) for name in TRANSITION_FIELDS}


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One write's pending transition (plain values)."""

    event_id: str
    customer_id: str
    subscription_id: str
    created: int
    until: int
    before: Mapping[str, Any]
    after: Mapping[str, Any]

    def announcement(self) -> DomainEvent | None:
        """The domain event this write caused, or None (the write changed nothing notable)."""
        return transition_event(
            self.event_id, self.created, self.customer_id, self.subscription_id, self.before, self.after
        )

    def abandoned(self, now: float) -> bool:
        """The attempt that wrote it has ended: nobody else is publishing it."""
        return now >= self.until


def encode_entry_head(created: int, until: int, after: Mapping[str, Any]) -> list[Any]:
    """The stored list up to ``after``; the write appends the item's transition fields as they were (``before``)."""
    return [created, until, *(after.get(name) for name in TRANSITION_FIELDS)]


def encode_settled(created: int) -> list[Any]:
    """A settled entry: only its ``created`` second remains."""
    return [created]


def decode_entry(event_id: str, customer_id: str, subscription_id: str, stored: Sequence[Any]) -> OutboxEntry | None:
    """The pending entry a stored list holds; None for a settled (or malformed) one."""
    width = len(TRANSITION_FIELDS)
    if len(stored) != _HEAD + 2 * width:
        return None
    after, before = stored[_HEAD : _HEAD + width], stored[_HEAD + width :]
    return OutboxEntry(
        event_id=event_id,
        customer_id=customer_id,
        subscription_id=subscription_id,
        created=int(stored[0]),
        until=int(stored[1]),
        before=dict(zip(TRANSITION_FIELDS, before, strict=True)),
        after=dict(zip(TRANSITION_FIELDS, after, strict=True)),
    )


def entries_in(item: Mapping[str, Any]) -> dict[str, int]:
    """Every entry an item holds, pending or settled: event id -> its ``created`` second."""
    found = {}
    for attribute, entry in item.items():
        if attribute.startswith(ENTRY_PREFIX) and isinstance(entry, list) and entry:
            found[attribute.removeprefix(ENTRY_PREFIX)] = int(entry[0])
    return found


def pending_in(item: Mapping[str, Any]) -> list[OutboxEntry]:
    """The pending entries an item (plain values) holds, oldest first; a malformed entry is skipped, never fatal."""
    if not item:
        return []
    customer_id = str(item.get("pk", "")).removeprefix("CUSTOMER#")
    subscription_id = str(item.get("sk", "")).removeprefix(SUBSCRIPTION_RECORD_PREFIX)
    pending = []
    for attribute, stored in item.items():
        if not attribute.startswith(ENTRY_PREFIX) or not isinstance(stored, list):
            continue
        entry = decode_entry(attribute.removeprefix(ENTRY_PREFIX), customer_id, subscription_id, stored)
        if entry is not None:
            pending.append(entry)
    return sorted(pending, key=lambda p: (p.created, p.event_id))
