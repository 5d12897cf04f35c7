"""`/v1/customers` and `/v1/payment_methods`."""

from __future__ import annotations

from devstack.stripe_emulator.domain.customers import Customers
from devstack.stripe_emulator.domain.payment_methods import PaymentMethods
from devstack.stripe_emulator.domain.pricing_plans import PricingPlans
from devstack.stripe_emulator.domain.subscriptions import Subscriptions
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate


class CustomersApi:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        customers: Customers,
        payment_methods: PaymentMethods,
        subscriptions: Subscriptions,
        pricing_plans: PricingPlans,
    ) -> None:
        self.store = store
        self.events = events
        self.customers = customers
        self.payment_methods = payment_methods
        self.subscriptions = subscriptions
        self.pricing_plans = pricing_plans

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/customers", self.create),
            RouteSpec("GET", "/v1/customers", self.list_),
            RouteSpec("GET", "/v1/customers/{id}", self.retrieve),
            RouteSpec("POST", "/v1/customers/{id}", self.update),
            RouteSpec("DELETE", "/v1/customers/{id}", self.delete),
        ]

    def create(self, req: Request) -> Obj:
        cus = self.customers.create(req.params)
        pm = req.params.get("payment_method")
        if pm:
            self.payment_methods.attach(cus, str(pm))
        return self.store.render(cus, req.expand)

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("customer")
        if req.params.get("email"):
            objs = [o for o in objs if o["email"] == req.params["email"]]
        return paginate(self.store, objs, req.params, "/v1/customers", req.expand)

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "customer"), req.expand)

    def update(self, req: Request) -> Obj:
        cus = self.store.get(req.path_params["id"], "customer")
        self.customers.update(cus, req.params)
        return self.store.render(cus, req.expand)

    def delete(self, req: Request) -> Obj:
        """Cancels the customer's subscriptions (and pricing-plan subscriptions) first, like Stripe."""
        cus = self.store.get(req.path_params["id"], "customer")
        self.subscriptions.cancel_for_customer(cus["id"])
        self.pricing_plans.cancel_for_customer(cus["id"])
        self.store.delete(cus["id"])
        self.events.emit("customer.deleted", cus)
        return {"id": cus["id"], "object": "customer", "deleted": True}


class PaymentMethodsApi:
    def __init__(self, store: Store, payment_methods: PaymentMethods) -> None:
        self.store = store
        self.payment_methods = payment_methods

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/payment_methods/{id}/attach", self.attach),
            RouteSpec("GET", "/v1/payment_methods/{id}", self.retrieve),
            RouteSpec("GET", "/v1/payment_methods", self.list_),
        ]

    def attach(self, req: Request) -> Obj:
        cus_id = req.params.get("customer")
        if not cus_id:
            raise missing_param("customer")
        cus = self.store.get(str(cus_id), "customer", "customer")
        return self.store.render(self.payment_methods.attach(cus, req.path_params["id"]))

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "payment_method"), req.expand)

    def list_(self, req: Request) -> Obj:
        cus_id = req.params.get("customer")
        if not cus_id:
            raise invalid("customer is required to list payment methods", param="customer")
        objs = [o for o in self.store.all("payment_method") if o["customer"] == cus_id]
        return paginate(self.store, objs, req.params, "/v1/payment_methods", req.expand)
