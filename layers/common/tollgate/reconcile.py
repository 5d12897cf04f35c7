"""Reconcile the table with Stripe: re-project one customer's (or every) subscription as Stripe has it now.

What dj-stripe's and Pay's sync commands do, for when events were lost beyond Stripe's 30-day resend, an endpoint
was disabled, or the table was restored from a backup. Each subscription goes through the webhook's own path
(projection, customer link, watermark-conditional write, transition outbox, domain events), with a FETCHED
watermark at the second Stripe answered, read from its ``Date`` header: the objects' own timestamps are not enough,
because a change such as ``cancel_at_period_end`` moves none of them. An event created in that same second and
delivered later ties with it and fetches the object again, so a reconcile never hides a newer change.

Run it where the functions' settings are set (``TABLE_NAME``, ``STRIPE_SECRET_ARN``, ``EVENT_BUS_NAME``,
``PLAN_CATALOG``)::

    python -m tollgate.reconcile --customer cus_123      # or --all
"""

from __future__ import annotations

import argparse
import email.utils
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tollgate import errors
from tollgate.adapters.stripe_client import stripe_errors
from tollgate.config import PlanCatalog
from tollgate.observability import logger
from tollgate.subscriptions import projection
from tollgate.subscriptions.model import Watermark
from tollgate.subscriptions.repository import StateWrite, subscription_sk
from tollgate.subscriptions.status import EffectsApplier
from tollgate.webhooks.handlers import Effects

if TYPE_CHECKING:
    import stripe


@dataclass(frozen=True, slots=True)
class FetchedPage:
    subscriptions: list[dict[str, Any]]
    #: When Stripe answered, on Stripe's clock (epoch seconds).
    fetched_at: int


class SubscriptionSource(Protocol):
    def pages(self, customer_id: str | None) -> Iterator[FetchedPage]: ...


def stripe_time(headers: Mapping[str, str] | None) -> int:
    """Stripe's clock from a response's ``Date`` header; without one there is no safe watermark, so refuse."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "date"), None)
    try:
        return int(email.utils.parsedate_to_datetime(value or "").timestamp())
    except (TypeError, ValueError):
        raise errors.UpstreamUnavailable("Stripe answered without a usable Date header") from None


class SdkSubscriptionSource:
    PAGE_SIZE = 100

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def pages(self, customer_id: str | None) -> Iterator[FetchedPage]:
        params: dict[str, Any] = {"status": "all", "limit": self.PAGE_SIZE, "expand": ["data.latest_invoice"]}
        if customer_id:
            params["customer"] = customer_id
        while True:
            with stripe_errors("subscriptions.list"):
                page = self._client.v1.subscriptions.list(params)  # type: ignore[arg-type]
            response = page.last_response
            yield FetchedPage([s.to_dict() for s in page.data], stripe_time(response.headers if response else None))
            if not page.has_more or not page.data:
                return
            params = {**params, "starting_after": page.data[-1].id}


@dataclass
class ReconcileReport:
    subscriptions: int = 0
    state_changes: int = 0
    skipped_without_customer: int = 0


@dataclass
class Reconciler:
    source: SubscriptionSource
    applier: EffectsApplier
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
                report.state_changes += self.applier.apply_effects(effects)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tollgate.reconcile", description="Re-project subscriptions from Stripe into the table."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--customer", help="one Stripe customer id (cus_...)")
    target.add_argument("--all", action="store_true", help="every subscription in the Stripe account")
    args = parser.parse_args(argv)

    from tollgate.bootstrap import container
    from tollgate.webhooks.wiring import webhook_service

    c = container()
    reconciler = Reconciler(SdkSubscriptionSource(c.stripe()), webhook_service(c), c.settings.plan_catalog)
    report = reconciler.run(None if args.all else args.customer)
    json.dump(asdict(report), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
