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

import time
from collections.abc import Callable
from dataclasses import dataclass

from tollgate import errors
from tollgate.domain.customers import customer_idempotency_key
from tollgate.observability import logger
from tollgate.ports.storage import CustomerDirectory
from tollgate.ports.stripe import CustomerGateway


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
    """The caller's Stripe customer id, creating it (exactly once) on first need or after Stripe deleted it."""
    current = directory.lookup(user_id)
    if current.live_customer_id:
        return current.live_customer_id
    claim = directory.claim_creation(user_id, replacing=current.customer_id if current.deleted else None)
    if claim.won and current.deleted:
        logger.info("deleted customer replaced", customer_id=current.customer_id, generation=claim.generation)
    generation = claim.generation
    if not claim.won:
        deadline = clock() + wait.total_seconds
        while clock() < deadline:
            sleep(wait.poll_seconds)
            record = directory.lookup(user_id)
            if record.live_customer_id:
                return record.live_customer_id
            if record.deleted:
                continue  # another request is about to replace it
            if record.generation != generation:
                # The creator's key was spent and its claim released: one of the waiters takes over at once.
                claim = directory.claim_creation(user_id)
                generation = claim.generation
                if claim.won:
                    break
        else:
            # The creator is slow or gone: the shared idempotency key makes our create return its customer.
            logger.info("customer creation wait elapsed", outcome="creating with shared key")
    try:
        customer_id = gateway.create_customer(user_id, email, customer_idempotency_key(user_id, generation))
    except errors.CreationKeyUnusable:
        # This key is dead for 24 h: the next attempt (the caller's retry) must use the next generation.
        moved = directory.advance_generation(user_id, generation)
        logger.warning("customer creation key retired", generation=generation, moved_on=moved)
        raise
    directory.link(user_id, customer_id)
    logger.info("customer linked", customer_id=customer_id)
    return customer_id
