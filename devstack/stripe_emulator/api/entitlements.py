"""`/v1/entitlements/*` (features: create, update, archive, list; active entitlements) and
`/v1/products/{id}/features` (attach, detach, list)."""

from __future__ import annotations

from devstack.stripe_emulator.domain.entitlements import FEATURE, Entitlements
from devstack.stripe_emulator.errors import missing_param, not_found
from devstack.stripe_emulator.forms import as_bool
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate


class EntitlementsApi:
    def __init__(self, store: Store, entitlements: Entitlements) -> None:
        self.store = store
        self.entitlements = entitlements

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v1/products/{id}/features", self.list_product_features),
            RouteSpec("POST", "/v1/products/{id}/features", self.attach),
            RouteSpec("DELETE", "/v1/products/{id}/features/{feature}", self.detach),
            RouteSpec("GET", "/v1/entitlements/features", self.list_features),
            RouteSpec("POST", "/v1/entitlements/features", self.create_feature),
            RouteSpec("GET", "/v1/entitlements/features/{id}", self.retrieve_feature),
            RouteSpec("POST", "/v1/entitlements/features/{id}", self.update_feature),
            RouteSpec("GET", "/v1/entitlements/active_entitlements", self.list_active),
            RouteSpec("GET", "/v1/entitlements/active_entitlements/{id}", self.retrieve_active),
        ]

    def list_product_features(self, req: Request) -> Obj:
        product = self.store.get(req.path_params["id"], "product")
        feats = list(reversed(self.entitlements.product_features(product["id"])))
        return paginate(self.store, feats, req.params, f"/v1/products/{product['id']}/features")

    def attach(self, req: Request) -> Obj:
        product = self.store.get(req.path_params["id"], "product")
        feature_id = req.params.get("entitlement_feature")
        if not feature_id:
            raise missing_param("entitlement_feature")
        feature = self.store.get(str(feature_id), FEATURE, "entitlement_feature")
        return self.entitlements.attach_feature(product["id"], feature)

    def detach(self, req: Request) -> Obj:
        product = self.store.get(req.path_params["id"], "product")
        return self.entitlements.detach(product["id"], req.path_params["feature"])

    def list_features(self, req: Request) -> Obj:
        """Active features unless ``archived=true`` (Stripe's default), optionally one lookup key."""
        archived = as_bool(req.params.get("archived"))
        objs = [f for f in self.store.all(FEATURE) if f["active"] != archived]
        if req.params.get("lookup_key"):
            objs = [f for f in objs if f["lookup_key"] == req.params["lookup_key"]]
        return paginate(self.store, objs, req.params, "/v1/entitlements/features")

    def create_feature(self, req: Request) -> Obj:
        for field in ("lookup_key", "name"):
            if not req.params.get(field):
                raise missing_param(field)
        p = req.params
        return self.entitlements.make_feature(str(p["lookup_key"]), str(p["name"]), p.get("metadata"))

    def retrieve_feature(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], FEATURE))

    def update_feature(self, req: Request) -> Obj:
        feature = self.store.get(req.path_params["id"], FEATURE)
        return self.store.render(self.entitlements.update_feature(feature, req.params))

    def list_active(self, req: Request) -> Obj:
        customer = req.params.get("customer")
        if not customer:
            raise missing_param("customer")
        self.store.get(str(customer), "customer", "customer")
        ents = self.entitlements.active_entitlements(str(customer))
        return paginate(self.store, ents, req.params, "/v1/entitlements/active_entitlements", req.expand)

    def retrieve_active(self, req: Request) -> Obj:
        ent = self.entitlements.find_active_entitlement(req.path_params["id"])
        if ent is None:
            raise not_found("active entitlement", req.path_params["id"])
        return self.store.render(ent, req.expand)
