"""Domain events from a change of one table item: the old and new images of a DynamoDB stream record, as plain
values.

Two sources, both committed by the write itself, so a crash after the commit loses nothing (the stream carries it):

- **transitions**: a write of a subscription's state (its ``watermark`` changed) whose *transition fields* differ
  between the old and the new image (``subscription.activated``, ``.past_due``...), named by
  ``tollgate.domain.events.subscription_transition`` and identified by the Stripe event (or page, or reconcile)
  the write's watermark names;
- **announcements**: the domain events a webhook handler derived from the Stripe event itself (``payment.failed``,
  ``trial.ending``...), stored by the same write under ``announcements`` (on the state item, or on the event's
  ledger item when no state write carried them). A write without announcements removes the attribute, so a new
  image announces only what its own write put there.

An id is ``{stripe event id}:{name}``: a record retried by the stream carries the same ids, and consumers
deduplicate on them (docs/domain-events.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tollgate.domain.events import DomainEvent, transition_event
from tollgate.domain.subscriptions import SUBSCRIPTION_RECORD_PREFIX, Watermark

ANNOUNCEMENTS_ATTRIBUTE = "announcements"
CUSTOMER_RECORD_PREFIX = "CUSTOMER#"
#: Fields whose change makes a subscription transition (see tollgate.domain.events.subscription_transition).
TRANSITION_FIELDS = ("status", "gone", "cancel_at_period_end", "price_id", "quantity")


def transition_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The transition fields of a state; a field the item does not hold is absent (None)."""
    return {name: values.get(name) for name in TRANSITION_FIELDS}


def encode_announcements(events: Iterable[DomainEvent]) -> str:
    """The stored form: a compact JSON list of the events as published."""
    return json.dumps([e.model_dump() for e in events], separators=(",", ":"))


def decode_announcements(stored: Any) -> list[DomainEvent]:
    """The announcements an item holds (none when the attribute is absent). Malformed ones raise: the record is
    poison, and the stream's on-failure destination keeps it for an operator."""
    if stored is None:
        return []
    return [DomainEvent.model_validate(e) for e in json.loads(stored)]


def events_from_change(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[DomainEvent]:
    """Every domain event one item change announces, in a stable order (announcements, then the transition)."""
    if not new:
        return []  # a removed item (TTL expiry) announces nothing
    before = old or {}
    already = {e.id for e in decode_announcements(before.get(ANNOUNCEMENTS_ATTRIBUTE))}
    events = [e for e in decode_announcements(new.get(ANNOUNCEMENTS_ATTRIBUTE)) if e.id not in already]
    transition = _transition(before, new)
    if transition is not None:
        events.append(transition)
    return events


def _transition(old: Mapping[str, Any], new: Mapping[str, Any]) -> DomainEvent | None:
    pk, sk = str(new.get("pk", "")), str(new.get("sk", ""))
    if not (pk.startswith(CUSTOMER_RECORD_PREFIX) and sk.startswith(SUBSCRIPTION_RECORD_PREFIX)):
        return None
    watermark = new.get("watermark")
    if not isinstance(watermark, str) or watermark == old.get("watermark"):
        return None  # not a write of the subscription's own state
    written = Watermark.decode(watermark)
    return transition_event(
        written.event_id,
        written.created,
        pk.removeprefix(CUSTOMER_RECORD_PREFIX),
        sk.removeprefix(SUBSCRIPTION_RECORD_PREFIX),
        transition_fields(old),
        transition_fields(new),
    )


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One change of one item, as the table's stream reports it (plain values; None: no such image)."""

    sequence_number: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
