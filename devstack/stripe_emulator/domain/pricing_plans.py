"""Pricing-plan subscriptions (v2 preview): created by Checkout, renewed monthly by the clock, dunned like invoices.

They announce themselves only through thin events, `v2.billing.pricing_plan_subscription.<transition>`:
servicing_activated / collection_current (checkout, recovery), collection_awaiting_customer_action (a renewal
payment failed, retries scheduled), collection_paused + servicing_paused (all retries failed), servicing_canceled
(customer deleted or `POST /_emulator/pricing_plan_subscriptions/{id}/cancel`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.isotime import iso
from devstack.stripe_emulator.schedule import RENEWAL, BusinessTime, Task
from devstack.stripe_emulator.store import Obj, Store

from .catalog import Catalog
from .invoice_lines import line
from .invoices import PAID, Invoices
from .periods import add_interval
from .settings import Settings

KIND = "v2.billing.pricing_plan_subscription"


class PricingPlans:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        time: BusinessTime,
        settings: Settings,
        catalog: Catalog,
        invoices: Invoices,
    ) -> None:
        self.store = store
        self.events = events
        self.time = time
        self.settings = settings
        self.catalog = catalog
        self.invoices = invoices

    def _event(self, ppsub: Obj, transition: str) -> None:
        self.events.emit_v2(f"{KIND}.{transition}", ppsub["id"], KIND)

    def _collection(self, ppsub: Obj, status: str) -> None:
        ppsub["collection_status"] = status
        ppsub["collection_status_transitions"][f"{status}_at"] = iso(self.time.now())
        self._event(ppsub, f"collection_{status}")

    def _servicing(self, ppsub: Obj, status: str, transition: str) -> None:
        ppsub["servicing_status"] = status
        ppsub["servicing_status_transitions"][f"{transition}_at"] = iso(self.time.now())
        self._event(ppsub, f"servicing_{transition}")

    def subscribe(self, customer_id: str, plan_id: str, metadata: dict[str, Any]) -> tuple[Obj, Obj]:
        """Create the subscription, invoice and collect the first license fee; returns (ppsub, invoice)."""
        now = self.time.now()
        ppsub: Obj = {
            "id": new_id("bpps_test", 32),
            "object": KIND,
            "billing_cadence": new_id("bc_test", 32),
            "collection_status": "current",
            "collection_status_transitions": {
                "awaiting_customer_action_at": None,
                "current_at": iso(now),
                "past_due_at": None,
                "paused_at": None,
                "unpaid_at": None,
            },
            "created": iso(now),
            "customer": customer_id,
            "livemode": False,
            "metadata": dict(metadata),
            "pricing_plan": plan_id,
            "pricing_plan_version": plan_id.replace("bpp_", "bppv_"),
            "servicing_status": "active",
            "servicing_status_transitions": {"activated_at": iso(now), "canceled_at": None, "paused_at": None},
            "test_clock": None,
        }
        self.store.put(ppsub)
        inv = self._invoice(ppsub, now, "subscription_create")
        self.invoices.collect(inv, None, "succeed")
        self._event(ppsub, "servicing_activated")
        self._event(ppsub, "collection_current")
        return ppsub, inv

    def _invoice(self, ppsub: Obj, start: int, reason: str) -> Obj:
        plan_id = ppsub["pricing_plan"]
        seed = self.catalog.plan_seed(plan_id)
        fee = int(seed.get("monthly_license_fee", 0))
        end = add_interval(start, "month")
        self.store.side(ppsub["id"])["period_end"] = end
        price = {"id": plan_id, "product": plan_id, "currency": seed.get("currency", "usd"), "unit_amount": fee}
        fee_line = line(None, None, price, 1, fee, start, end, f"{seed.get('display_name', plan_id)} license fee")
        inv = self.invoices.issue(None, ppsub["customer"], [fee_line], reason)
        self.store.side(inv["id"])["pricing_plan_subscription"] = ppsub["id"]
        return inv

    # ---- the clock --------------------------------------------------------------------------------------------

    def due(self) -> list[Task]:
        out: list[Task] = []
        for ppsub in self.store.all(KIND):
            if ppsub["servicing_status"] != "active" or ppsub["collection_status"] == "paused":
                continue
            end = self.store.side(ppsub["id"]).get("period_end")
            if end is not None:
                out.append((end, RENEWAL, partial(self._renew, ppsub)))
        return out

    def _renew(self, ppsub: Obj) -> None:
        inv = self._invoice(ppsub, self.store.side(ppsub["id"])["period_end"], "subscription_cycle")
        if self.invoices.collect(inv, None) == PAID:
            return
        side = self.store.side(inv["id"])
        side.setdefault("retries_left", self.settings.dunning_retries)
        if side["retries_left"] > 0:
            inv["next_payment_attempt"] = self.time.now() + self.settings.dunning_retry_interval
        if ppsub["collection_status"] == "current":
            self._collection(ppsub, "awaiting_customer_action")
        if side["retries_left"] <= 0:
            self.collection_failed_for_good(ppsub["id"])

    # ---- listeners (invoice paid, dunning exhausted) --------------------------------------------------------

    def on_invoice_paid(self, inv: Obj, before: Obj) -> None:
        """A retried license-fee invoice was paid: collection is current again."""
        ppsub_id = self.store.side(inv["id"]).get("pricing_plan_subscription")
        if ppsub_id and before["attempt_count"] > 0 and before["status"] == "open":
            self.collection_recovered(ppsub_id)

    def on_dunning_exhausted(self, inv: Obj) -> None:
        ppsub_id = self.store.side(inv["id"]).get("pricing_plan_subscription")
        if ppsub_id:
            self.collection_failed_for_good(ppsub_id)

    def collection_recovered(self, ppsub_id: str) -> None:
        ppsub = self.store.find(ppsub_id)
        if ppsub is None or ppsub["collection_status"] == "current":
            return
        self._collection(ppsub, "current")
        if ppsub["servicing_status"] == "paused":
            ppsub["servicing_status"] = "active"
            self._event(ppsub, "servicing_activated")

    def collection_failed_for_good(self, ppsub_id: str) -> None:
        ppsub = self.store.find(ppsub_id)
        if ppsub is None or ppsub["servicing_status"] != "active":
            return
        self._collection(ppsub, "paused")
        self._servicing(ppsub, "paused", "paused")

    # ---- cancellation ---------------------------------------------------------------------------------------

    def cancel(self, ppsub: Obj) -> None:
        if ppsub["servicing_status"] == "canceled":
            return
        self._servicing(ppsub, "canceled", "canceled")
        for inv in self.store.all("invoice"):
            if self.store.side(inv["id"]).get("pricing_plan_subscription") == ppsub["id"] and inv["status"] == "open":
                self.invoices.stop_collecting(inv)

    def cancel_for_customer(self, customer_id: str) -> None:
        for ppsub in self.store.all(KIND):
            if ppsub["customer"] == customer_id:
                self.cancel(ppsub)
