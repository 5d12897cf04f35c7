"""Pricing-plan subscriptions (v2 preview): created by Checkout, renewed monthly by the clock, dunned like invoices.

They announce themselves only through thin events, `v2.billing.pricing_plan_subscription.<transition>`:
servicing_activated / collection_current (checkout, recovery), collection_awaiting_customer_action (a renewal
payment failed, retries scheduled), collection_paused + servicing_paused (all retries failed), servicing_canceled
(customer deleted or `POST /_emulator/pricing_plan_subscriptions/{id}/cancel`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .billing import add_interval
from .events import iso
from .ids import new_id
from .store import Obj

if TYPE_CHECKING:
    from .app import StripeEmulator

KIND = "v2.billing.pricing_plan_subscription"


class PricingPlans:
    def __init__(self, emu: StripeEmulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.billing = emu.billing

    def _event(self, ppsub: Obj, transition: str) -> None:
        self.emu.events.emit_v2(f"{KIND}.{transition}", ppsub["id"], KIND)

    def _collection(self, ppsub: Obj, status: str) -> None:
        ppsub["collection_status"] = status
        ppsub["collection_status_transitions"][f"{status}_at"] = iso(self.billing.now())
        self._event(ppsub, f"collection_{status}")

    def _servicing(self, ppsub: Obj, status: str, transition: str) -> None:
        ppsub["servicing_status"] = status
        ppsub["servicing_status_transitions"][f"{transition}_at"] = iso(self.billing.now())
        self._event(ppsub, f"servicing_{transition}")

    def subscribe(self, customer_id: str, plan_id: str, metadata: dict[str, Any]) -> tuple[Obj, Obj]:
        """Create the subscription, invoice and collect the first license fee; returns (ppsub, invoice)."""
        now = self.billing.now()
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
        self.billing.collect(inv, None, "succeed")
        self._event(ppsub, "servicing_activated")
        self._event(ppsub, "collection_current")
        return ppsub, inv

    def _invoice(self, ppsub: Obj, start: int, reason: str) -> Obj:
        seed = self.store.side(ppsub["pricing_plan"]).get("seed", {})
        fee = int(seed.get("monthly_license_fee", 0))
        plan_id = ppsub["pricing_plan"]
        end = add_interval(start, "month")
        self.store.side(ppsub["id"])["period_end"] = end
        price = {"id": plan_id, "product": plan_id, "currency": seed.get("currency", "usd"), "unit_amount": fee}
        line = self.billing.line(
            None, None, price, 1, fee, start, end, f"{seed.get('display_name', plan_id)} license fee"
        )
        inv = self.billing.issue_invoice(None, ppsub["customer"], [line], reason)
        self.store.side(inv["id"])["pricing_plan_subscription"] = ppsub["id"]
        return inv

    def due(self) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for ppsub in self.store.all(KIND):
            if ppsub["servicing_status"] != "active" or ppsub["collection_status"] == "paused":
                continue
            end = self.store.side(ppsub["id"]).get("period_end")
            if end is not None:
                out.append((end, 2, self._renew(ppsub)))
        return out

    def _renew(self, ppsub: Obj) -> Any:
        def run() -> None:
            inv = self._invoice(ppsub, self.store.side(ppsub["id"])["period_end"], "subscription_cycle")
            if self.billing.collect(inv, None) == "paid":
                return
            side = self.store.side(inv["id"])
            side.setdefault("retries_left", self.billing.dunning_retries)
            if side["retries_left"] > 0:
                inv["next_payment_attempt"] = self.billing.now() + self.billing.dunning_retry_interval
            if ppsub["collection_status"] == "current":
                self._collection(ppsub, "awaiting_customer_action")
            if side["retries_left"] <= 0:
                self.collection_failed_for_good(ppsub["id"])

        return run

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

    def cancel(self, ppsub: Obj) -> None:
        if ppsub["servicing_status"] == "canceled":
            return
        self._servicing(ppsub, "canceled", "canceled")
        for inv in self.store.all("invoice"):
            if self.store.side(inv["id"]).get("pricing_plan_subscription") == ppsub["id"] and inv["status"] == "open":
                inv["next_payment_attempt"] = None
                inv["auto_advance"] = False

    def cancel_for_customer(self, customer_id: str) -> None:
        for ppsub in self.store.all(KIND):
            if ppsub["customer"] == customer_id:
                self.cancel(ppsub)
