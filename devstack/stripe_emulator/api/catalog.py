"""`/v1/products` and `/v1/prices` (create, update, archive; lookup keys) and `/v2/billing/pricing_plans`."""

from __future__ import annotations

from devstack.stripe_emulator.domain.catalog import Catalog
from devstack.stripe_emulator.errors import missing_param
from devstack.stripe_emulator.forms import as_bool, as_list
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate


class ProductsApi:
    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v1/products", self.list_),
            RouteSpec("POST", "/v1/products", self.create),
            RouteSpec("GET", "/v1/products/{id}", self.retrieve),
            RouteSpec("POST", "/v1/products/{id}", self.update),
        ]

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("product")
        if "active" in req.params:
            objs = [o for o in objs if o["active"] == as_bool(req.params["active"])]
        return paginate(self.store, objs, req.params, "/v1/products", req.expand)

    def create(self, req: Request) -> Obj:
        if not req.params.get("name"):
            raise missing_param("name")
        return self.store.render(self.catalog.make_product(req.params), req.expand)

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "product"), req.expand)

    def update(self, req: Request) -> Obj:
        product = self.store.get(req.path_params["id"], "product")
        return self.store.render(self.catalog.update_product(product, req.params), req.expand)


class PricesApi:
    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v1/prices", self.list_),
            RouteSpec("POST", "/v1/prices", self.create),
            RouteSpec("GET", "/v1/prices/{id}", self.retrieve),
            RouteSpec("POST", "/v1/prices/{id}", self.update),
        ]

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("price")
        keys = as_list(req.params.get("lookup_keys"))
        if keys:
            objs = [o for o in objs if o["lookup_key"] in keys]
        if "active" in req.params:
            objs = [o for o in objs if o["active"] == as_bool(req.params["active"])]
        for key in ("product", "type"):
            if req.params.get(key):
                objs = [o for o in objs if o[key] == req.params[key]]
        return paginate(self.store, objs, req.params, "/v1/prices", req.expand)

    def create(self, req: Request) -> Obj:
        for field in ("product", "currency"):
            if not req.params.get(field):
                raise missing_param(field)
        return self.store.render(self.catalog.make_price(req.params), req.expand)

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "price"), req.expand)

    def update(self, req: Request) -> Obj:
        price = self.store.get(req.path_params["id"], "price")
        return self.store.render(self.catalog.update_price(price, req.params), req.expand)


class PricingPlansApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/v2/billing/pricing_plans/{id}", self.retrieve)]

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "v2.billing.pricing_plan"))
