"""Reconcile the table with Stripe: re-project one customer's (or every) subscription as Stripe has it now.

What dj-stripe's and Pay's sync commands do, for when events were lost beyond Stripe's 30-day resend, an endpoint
was disabled, or the table was restored from a backup. Each subscription goes through the webhook's own path
(projection, customer link, watermark-conditional write; its transitions reach the bus through the table's stream),
with a FETCHED watermark at the second Stripe answered, read from its ``Date`` header: the objects' own timestamps
are not enough, because a change such as ``cancel_at_period_end`` moves none of them. An event created in that same
second and delivered later ties with it and fetches the object again, so a reconcile never hides a newer change.

The command: ``tollgate.commands.reconcile`` (``make reconcile``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tollgate.config import PlanCatalog
from tollgate.domain import projection
from tollgate.domain.effects import Effects
from tollgate.domain.subscriptions import StateWrite, Watermark, subscription_sk
from tollgate.observability import logger
from tollgate.ports.stripe import SubscriptionSource
from tollgate.services.subscription_writes import SubscriptionWriter


@dataclass
class ReconcileReport:
    subscriptions: int = 0
    state_changes: int = 0
    skipped_without_customer: int = 0


@dataclass
class Reconciler:
    source: SubscriptionSource
    writer: SubscriptionWriter
    catalog: PlanCatalog | None

    def run(self, customer_id: str | None = None) -> ReconcileReport:
        report = ReconcileReport()
        for page in self.source.pages(customer_id):
            watermark = Watermark(page.fetched_at, Watermark.FETCHED, f"reconcile_{page.fetched_at}")
            for subscription in page.subscriptions:
                effects = self._effects(subscription, watermark)
                if effects is None:
                    report.skipped_without_customer += 1
                    continue
                report.subscriptions += 1
                report.state_changes += self.writer.apply_effects(effects)
        logger.info("reconciled with Stripe", **asdict(report))
        return report

    def _effects(self, subscription: Mapping[str, Any], watermark: Watermark) -> Effects | None:
        customer = subscription.get("customer")
        customer_id = customer.get("id") if isinstance(customer, Mapping) else customer
        if not isinstance(customer_id, str) or not customer_id:
            return None
        fields = projection.subscription_fields(subscription, self.catalog)
        write = StateWrite(customer_id, subscription_sk(str(subscription["id"])), "subscription", fields, watermark)
        effects = Effects(writes=[write])
        user_id = projection.checkout_user_id({"metadata": subscription.get("metadata") or {}})
        if user_id:
            effects.link = (user_id, customer_id)
        return effects
