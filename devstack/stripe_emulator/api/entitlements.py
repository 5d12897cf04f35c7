"""`/v1/entitlements/*` (features, active entitlements) and `/v1/products/{id}/features`."""

from __future__ import annotations

from devstack.stripe_emulator.domain.entitlements import Entitlements
from devstack.stripe_emulator.errors import missing_param, not_found
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate


class EntitlementsApi:
    def __init__(self, store: Store, entitlements: Entitlements) -> None:
        self.store = store
        self.entitlements = entitlements

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v1/products/{id}/features", self.list_product_features),
            RouteSpec("GET", "/v1/entitlements/features", self.list_features),
            RouteSpec("GET", "/v1/entitlements/active_entitlements", self.list_active),
            RouteSpec("GET", "/v1/entitlements/active_entitlements/{id}", self.retrieve_active),
        ]

    def list_product_features(self, req: Request) -> Obj:
        product = self.store.get(req.path_params["id"], "product")
        feats = list(reversed(self.entitlements.product_features(product["id"])))
        return paginate(self.store, feats, req.params, f"/v1/products/{product['id']}/features")

    def list_features(self, req: Request) -> Obj:
        return paginate(self.store, self.store.all("entitlements.feature"), req.params, "/v1/entitlements/features")

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
