"""Replay the Stripe events that were never delivered successfully (the webhook was down, or answered non-2xx
until Stripe gave up): each goes through the webhook's own processing, so a replay is a redelivery - idempotent,
order-safe, announced once. What ``stripe events resend`` does one by one, for all of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tollgate import errors
from tollgate.observability import logger
from tollgate.ports.stripe import UndeliveredEvents
from tollgate.services.webhook import WebhookService

#: Stripe lists events for 30 days.
MAX_DAYS = 30


@dataclass
class ReplayReport:
    listed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)


@dataclass
class EventReplay:
    source: UndeliveredEvents
    webhook: WebhookService
    clock: Callable[[], float]

    def run(self, days: int = MAX_DAYS) -> ReplayReport:
        if not 1 <= days <= MAX_DAYS:
            raise errors.InvalidRequest(f"days must be between 1 and {MAX_DAYS}")
        report = ReplayReport()
        for document in self.source.since(int(self.clock()) - days * 86_400):
            report.listed += 1
            try:
                outcome = self.webhook.replay(document)
            except errors.TollgateError as exc:
                # Left for the next run (Stripe or DynamoDB unavailable, a lease held elsewhere): never half-applied.
                report.failed.append(str(document.get("id")))
                report.outcomes[type(exc).__name__] += 1
                continue
            report.outcomes[outcome.result] += 1
        logger.info("undelivered events replayed", listed=report.listed, failed=len(report.failed))
        return report
