"""Stripe events that arrive through Amazon EventBridge: the envelope, and the trust decision that replaces the
webhook's signature.

Stripe puts each event on a partner event source in the stack's account (``aws.partner/stripe.com/<destination>``),
inside EventBridge's envelope: ``source`` is that partner source, ``detail-type`` the event type, ``detail`` the
Stripe event itself (snapshot or thin, exactly as a webhook delivery's body). Nothing is signed: trust comes from
where the event came from. Only the partner sources this stack's provisioning created are accepted, and only
EventBridge can put messages on the queue (its policy names the rules on the partner buses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Every Stripe partner event source starts with this; the rest is the event destination's id.
PARTNER_SOURCE_PREFIX = "aws.partner/stripe.com/"


class UntrustedEnvelope(Exception):
    """Not an event from one of this stack's Stripe partner sources: refused before any processing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BridgedEvent:
    """A trusted envelope's content: which partner source sent it, and the Stripe event document."""

    source: str
    detail_type: str
    detail: Mapping[str, Any]


def open_envelope(document: Any, trusted_sources: frozenset[str]) -> BridgedEvent:
    """The Stripe event inside an EventBridge envelope, if the envelope comes from a trusted partner source.

    ``trusted_sources`` empty means none is configured yet: everything is refused (fail closed). A partner source
    exists in exactly one account (Stripe names it after the destination), so the name also pins the account."""
    if not isinstance(document, Mapping):
        raise UntrustedEnvelope("not an EventBridge envelope")
    source = document.get("source")
    if not isinstance(source, str) or not source.startswith(PARTNER_SOURCE_PREFIX):
        raise UntrustedEnvelope("source is not a Stripe partner event source")
    if source not in trusted_sources:
        raise UntrustedEnvelope("source is not one of this stack's partner event sources")
    detail = document.get("detail")
    detail_type = document.get("detail-type")
    if not isinstance(detail, Mapping) or not isinstance(detail_type, str):
        raise UntrustedEnvelope("envelope has no event")
    if detail.get("type") != detail_type:
        # Stripe sets detail-type to the event's type; a mismatch is not something Stripe sent.
        raise UntrustedEnvelope("detail-type does not match the event")
    return BridgedEvent(source, detail_type, detail)
