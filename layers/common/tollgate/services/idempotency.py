"""Stripe idempotency keys for the customer-facing routes, derived from our own identifiers (never random).

A key is scoped to the user (two users' keys never collide) and to the request's content. The client's
``Idempotency-Key`` is honoured; without one, repeats of the same request within a window of the first one share a
key (a double click returns the same session instead of opening a second one).
"""

from __future__ import annotations

import hashlib
import re

from tollgate import errors
from tollgate.ports.storage import RequestWindows

_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_\-:.]{1,128}$")


def check_client_key(client_key: str | None) -> None:
    if client_key is not None and not _CLIENT_KEY.fullmatch(client_key):
        raise errors.InvalidRequest("invalid Idempotency-Key header")


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def scoped_idempotency_key(
    operation: str,
    user_id: str,
    client_key: str | None,
    parts: tuple[str, ...],
    *,
    windows: RequestWindows,
    now: float,
    window: int,
) -> str:
    """A Stripe idempotency key scoped to the user (two users' keys never collide) and to the request's content.

    Honours the client's ``Idempotency-Key``. Without one, repeats of the same request within ``window`` seconds
    of the first one share a key. The window starts at the first request, not at a fixed clock boundary: a fixed
    bucket (``now // window``) splits a double click that straddles a boundary into two sessions. Including the
    content means reusing a client key with a different body opens a different session instead of failing in
    Stripe.
    """
    check_client_key(client_key)
    if client_key is not None:
        basis = f"client:{client_key}"
    else:
        fingerprint = digest(operation, user_id, *parts)
        basis = f"first-seen:{windows.first_seen(fingerprint, int(now), window)}"
    return f"{operation}:{digest(operation, user_id, basis, *parts)}"
