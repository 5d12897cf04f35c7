"""`/v2/billing/pricing_plan_subscriptions` (stripe-python 16.1.0 has no service: use `client.raw_request`)."""

from __future__ import annotations

from devstack.stripe_emulator.domain.pricing_plans import KIND
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store


class PricingPlanSubscriptionsApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v2/billing/pricing_plan_subscriptions", self.list_),
            RouteSpec("GET", "/v2/billing/pricing_plan_subscriptions/{id}", self.retrieve),
        ]

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], KIND))

    def list_(self, req: Request) -> Obj:
        objs = self.store.all(KIND)
        if req.params.get("customer"):
            objs = [o for o in objs if o["customer"] == req.params["customer"]]
        return {"data": [self.store.render(o) for o in objs], "next_page_url": None, "previous_page_url": None}
