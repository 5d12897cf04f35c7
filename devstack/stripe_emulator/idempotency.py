"""Idempotency-Key semantics for POSTs (v1 and v2).

First response for a key is saved and replayed (status included, even a 500) with `Idempotent-Replayed: true`;
the same key with different parameters is a 400 idempotency_error; a second request while the first is still
running gets 409. Entries expire after 24 h (v1) or 30 days (v2) on the emulator clock.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

V1_TTL = 24 * 3600
V2_TTL = 30 * 24 * 3600


@dataclass
class SavedResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Entry:
    fingerprint: str
    created: float
    ttl: float
    response: SavedResponse | None = None
    done: threading.Event = field(default_factory=threading.Event)


def fingerprint(method: str, path: str, params: Any) -> str:
    raw = json.dumps([method, path, params], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class IdempotencyStore:
    """Keys are scoped by API key hash (like Stripe scopes by account)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Entry] = {}

    def begin(self, scope: str, key: str, fp: str, now: float, ttl: float) -> tuple[str, Entry]:
        """Return ("new"|"replay"|"mismatch"|"in_flight", entry)."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and now - entry.created > entry.ttl:
                entry = None
            if entry is None:
                entry = Entry(fingerprint=fp, created=now, ttl=ttl)
                self._entries[(scope, key)] = entry
                return "new", entry
            if entry.fingerprint != fp:
                return "mismatch", entry
            if entry.response is None:
                return "in_flight", entry
            return "replay", entry

    def finish(self, scope: str, key: str, response: SavedResponse | None) -> None:
        """Save the response, or forget the key (None) when the request never really started."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is None:
                return
            if response is None:
                del self._entries[(scope, key)]
            else:
                entry.response = response
            entry.done.set()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
