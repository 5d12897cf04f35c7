"""Entitlements: features attached to products (seeded), and each customer's active entitlements.

A customer's active entitlements are the features of the products on their subscriptions whose status is in
`ENTITLED_STATUSES`. After every `customer.subscription.*` event the set is recomputed and, when it changed,
`entitlements.active_entitlement_summary.updated` is emitted with the previous list in
`previous_attributes.entitlements`, like Stripe.
"""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.store import Obj, Store

# Subscription statuses that keep the product's entitlements active.
ENTITLED_STATUSES = ("trialing", "active", "past_due")


def feature_id(lookup_key: str) -> str:
    return "feat_test_" + lookup_key


class Entitlements:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    def make_feature(self, lookup_key: str, name: str | None = None) -> Obj:
        return self.store.put(
            {
                "id": feature_id(lookup_key),
                "object": "entitlements.feature",
                "active": True,
                "livemode": False,
                "lookup_key": lookup_key,
                "metadata": {},
                "name": name or lookup_key.replace("_", " ").title(),
            }
        )

    def attach(self, product_id: str, lookup_key: str) -> Obj:
        """A product_feature linking a product to a feature (created on demand)."""
        feature = self.store.find(feature_id(lookup_key)) or self.make_feature(lookup_key)
        link: Obj = {
            "id": new_id("prodft", 24),
            "object": "product_feature",
            "entitlement_feature": dict(feature),
            "livemode": False,
        }
        self.store.side(product_id).setdefault("features", []).append(link)
        return link

    def product_features(self, product_id: str) -> list[Obj]:
        return list(self.store.side(product_id).get("features", []))

    def _active_feature_ids(self, customer_id: str) -> list[str]:
        ids: set[str] = set()
        for sub in self.store.all("subscription"):
            if sub["customer"] != customer_id or sub["status"] not in ENTITLED_STATUSES:
                continue
            for item in sub["items"]["data"]:
                for link in self.product_features(str(item["price"].get("product"))):
                    ids.add(link["entitlement_feature"]["id"])
        return sorted(ids)

    def active_entitlements(self, customer_id: str) -> list[Obj]:
        """Active entitlement objects; ids stay stable while the feature remains active."""
        side = self.store.side(customer_id)
        ids: dict[str, str] = side.setdefault("entitlement_ids", {})
        out: list[Obj] = []
        for fid in side.get("entitled_features", []):
            feature = self.store.objects[fid]
            out.append(
                {
                    "id": ids.setdefault(fid, new_id("ent_test", 32)),
                    "object": "entitlements.active_entitlement",
                    "feature": fid,
                    "livemode": False,
                    "lookup_key": feature["lookup_key"],
                }
            )
        return out

    def find_active_entitlement(self, entitlement_id: str) -> Obj | None:
        for cus in self.store.all("customer"):
            for ent in self.active_entitlements(cus["id"]):
                if ent["id"] == entitlement_id:
                    return ent
        return None

    def summary(self, customer_id: str) -> Obj:
        data: list[Any] = []
        for ent in self.active_entitlements(customer_id):
            data.append({**ent, "feature": dict(self.store.objects[ent["feature"]])})
        return {
            "object": "entitlements.active_entitlement_summary",
            "customer": customer_id,
            "entitlements": {
                "object": "list",
                "data": data,
                "has_more": False,
                "url": f"/v1/customer/{customer_id}/entitlements",
            },
            "livemode": False,
        }

    def on_event(self, event_type: str, obj: Obj) -> None:
        """An event listener: recompute after each subscription event, announce a changed set."""
        if not event_type.startswith("customer.subscription."):
            return
        customer_id = str(obj.get("customer"))
        side = self.store.side(customer_id)
        old = list(side.get("entitled_features", []))
        new = self._active_feature_ids(customer_id)
        if new == old:
            return
        previous = self.summary(customer_id)["entitlements"]
        side["entitled_features"] = new
        kept = set(new)
        side["entitlement_ids"] = {k: v for k, v in side.get("entitlement_ids", {}).items() if k in kept}
        summary = self.summary(customer_id)
        self.events.emit("entitlements.active_entitlement_summary.updated", summary, {"entitlements": previous})
