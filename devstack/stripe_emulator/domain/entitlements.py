"""Entitlements: features (created, renamed, archived), features attached to products (product features), and
each customer's active entitlements.

A customer's active entitlements are the features of the products on their subscriptions whose status is in
`ENTITLED_STATUSES`. After every `customer.subscription.*` event the set is recomputed and, when it changed,
`entitlements.active_entitlement_summary.updated` is emitted with the previous list in
`previous_attributes.entitlements`, like Stripe.
"""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.errors import invalid, not_found
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.forms import as_bool, merge_metadata
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.store import Obj, Store

FEATURE = "entitlements.feature"
# Subscription statuses that keep the product's entitlements active.
ENTITLED_STATUSES = ("trialing", "active", "past_due")


def feature_id(lookup_key: str) -> str:
    return "feat_test_" + lookup_key


class Entitlements:
    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events

    def make_feature(
        self, lookup_key: str, name: str | None = None, metadata: dict[str, Any] | None = None, oid: str | None = None
    ) -> Obj:
        """A feature; its lookup key is unique in the account (archived features keep theirs)."""
        if self.feature_by_lookup_key(lookup_key) is not None:
            raise invalid(f"A feature with lookup_key {lookup_key} already exists.", param="lookup_key")
        return self.store.put(
            {
                "id": oid or new_id("feat_test", 32),
                "object": FEATURE,
                "active": True,
                "livemode": False,
                "lookup_key": lookup_key,
                "metadata": merge_metadata({}, metadata),
                "name": name or lookup_key.replace("_", " ").title(),
            }
        )

    def feature_by_lookup_key(self, lookup_key: str) -> Obj | None:
        return next((f for f in self.store.all(FEATURE) if f["lookup_key"] == lookup_key), None)

    def update_feature(self, feature: Obj, params: dict[str, Any]) -> Obj:
        if "name" in params:
            if not params["name"]:
                raise invalid("name cannot be empty.", param="name")
            feature["name"] = str(params["name"])
        if "active" in params:
            feature["active"] = as_bool(params["active"])
        if "metadata" in params:
            feature["metadata"] = merge_metadata(feature["metadata"], params["metadata"])
        for links in (self.store.side(pid).get("features", []) for pid in self._products_with_features()):
            for link in links:
                if link["entitlement_feature"]["id"] == feature["id"]:
                    link["entitlement_feature"] = dict(feature)
        return feature

    def _products_with_features(self) -> list[str]:
        return [p["id"] for p in self.store.all("product") if self.store.side(p["id"]).get("features")]

    def attach(self, product_id: str, lookup_key: str) -> Obj:
        """Seeding: attach the feature with this lookup key (made on demand, with the seed's fixed id)."""
        feature = self.feature_by_lookup_key(lookup_key) or self.make_feature(lookup_key, oid=feature_id(lookup_key))
        return self.attach_feature(product_id, feature)

    def attach_feature(self, product_id: str, feature: Obj) -> Obj:
        """A product_feature linking a product to an active feature, once per product."""
        if not feature["active"]:
            raise invalid("An archived feature cannot be attached to a product.", param="entitlement_feature")
        if any(link["entitlement_feature"]["id"] == feature["id"] for link in self.product_features(product_id)):
            raise invalid(
                f"The feature {feature['id']} is already attached to this product.", param="entitlement_feature"
            )
        link: Obj = {
            "id": new_id("prodft", 24),
            "object": "product_feature",
            "entitlement_feature": dict(feature),
            "livemode": False,
        }
        self.store.side(product_id).setdefault("features", []).append(link)
        return link

    def detach(self, product_id: str, link_id: str) -> Obj:
        links = self.store.side(product_id).setdefault("features", [])
        link = next((link for link in links if link["id"] == link_id), None)
        if link is None:
            raise not_found("product_feature", link_id)
        links.remove(link)
        return {"id": link_id, "object": "product_feature", "deleted": True}

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
