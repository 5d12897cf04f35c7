"""In-memory fakes of the usage ports: ledger, transport, directory, parking, metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tollgate.adapters.dynamodb.usage_ledger import RESEND_WINDOW_SECONDS
from tollgate.errors import PersistenceUnavailable
from tollgate.ports.messaging import ParkedRecord
from tollgate.ports.storage import LedgerEntry, LedgerStatus, Settled, UsageClaim
from tollgate.ports.stripe import MeterEvent, SendResult, SendStatus
from tollgate.services.usage_reporter import InboundRecord

NOW = 1_790_000_000


def usage(usage_id: str, *, value: int = 5, user_id: str | None = "user-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_version": 1,
        "usage_id": usage_id,
        "event_name": "api_tokens",
        "value": value,
        "occurred_at": NOW - 60,
    }
    if user_id is not None:
        body["user_id"] = user_id
    body.update(overrides)
    return body


def record(body: dict[str, Any] | str, message_id: str | None = None) -> InboundRecord:
    text = body if isinstance(body, str) else json.dumps(body)
    return InboundRecord(message_id=message_id or f"m-{abs(hash(text)) % 10**9}-{time.monotonic_ns()}", body=text)


@dataclass
class InMemoryLedger:
    """The DynamoDB ledger's rules, in memory (tests/integration/usage checks the real one)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_claims_for: set[str] = field(default_factory=set)
    fail_settles: bool = False
    clock: Callable[[], float] = lambda: NOW

    def claim(self, entry: LedgerEntry) -> UsageClaim:
        if entry.usage_id in self.fail_claims_for:
            raise PersistenceUnavailable()
        now = self.clock()
        old = self.items.get(entry.usage_id)
        first_attempt_at = now
        if old is not None:
            if old["content_hash"] != entry.content_hash:
                return UsageClaim.CONFLICT
            if old["status"] == LedgerStatus.SENT:
                return UsageClaim.ALREADY_SENT
            if old["status"] == LedgerStatus.PENDING:
                if old["first_attempt_at"] <= now - RESEND_WINDOW_SECONDS:
                    return UsageClaim.NEEDS_RECONCILIATION
                first_attempt_at = old["first_attempt_at"]
        self.items[entry.usage_id] = {
            "content_hash": entry.content_hash,
            "status": LedgerStatus.PENDING,
            "first_attempt_at": first_attempt_at,
        }
        return UsageClaim.CLAIMED

    def settle(self, outcomes: Sequence[Settled]) -> list[Settled]:
        if self.fail_settles:
            return list(outcomes)
        for o in outcomes:
            self.items[o.entry.usage_id] = {"content_hash": o.entry.content_hash, "status": o.status}
        return []


@dataclass
class FakeTransport:
    """Accepts everything unless told otherwise; remembers every request."""

    max_batch: int = 100
    requests: list[list[MeterEvent]] = field(default_factory=list)
    answers: dict[str, SendResult] = field(default_factory=dict)  # by usage id prefix of the identifier

    def send(self, events: Sequence[MeterEvent]) -> dict[str, SendResult]:
        self.requests.append(list(events))
        out = {}
        for e in events:
            usage_id = e.identifier[4:].rpartition("_")[0]
            out[e.identifier] = self.answers.get(usage_id, SendResult(SendStatus.ACCEPTED))
        return out

    @property
    def sent(self) -> list[MeterEvent]:
        return [e for r in self.requests for e in r]


@dataclass
class FakeDirectory:
    mapping: dict[str, str] = field(default_factory=lambda: {"user-1": "cus_One", "user-2": "cus_Two"})
    failing: set[str] = field(default_factory=set)
    lookups: int = 0

    def customer_for_user(self, user_id: str) -> str | None:
        self.lookups += 1
        if user_id in self.failing:
            raise PersistenceUnavailable()
        return self.mapping.get(user_id)


@dataclass
class FakeParking:
    parked: list[ParkedRecord] = field(default_factory=list)

    def park(self, records: Sequence[ParkedRecord]) -> list[str]:
        self.parked.extend(records)
        return []


@dataclass
class FakeMetrics:
    values: dict[str, float] = field(default_factory=dict)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value
