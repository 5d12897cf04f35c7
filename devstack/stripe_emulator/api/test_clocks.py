"""`/v1/test_helpers/test_clocks`: a thin veneer over the one emulator clock (advancing any test clock advances
emulator time)."""

from __future__ import annotations

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_int
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate

KIND = "test_helpers.test_clock"
DELETES_AFTER = 30 * 86400


class TestClocksApi:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/test_helpers/test_clocks", self.create),
            RouteSpec("GET", "/v1/test_helpers/test_clocks", self.list_),
            RouteSpec("GET", "/v1/test_helpers/test_clocks/{id}", self.retrieve),
            RouteSpec("POST", "/v1/test_helpers/test_clocks/{id}/advance", self.advance),
            RouteSpec("DELETE", "/v1/test_helpers/test_clocks/{id}", self.delete),
        ]

    def create(self, req: Request) -> Obj:
        frozen = req.params.get("frozen_time")
        if frozen in (None, ""):
            raise missing_param("frozen_time")
        now = self.clock.now_int()
        clock: Obj = {
            "id": new_id("clock", 24),
            "object": KIND,
            "created": now,
            "deletes_after": now + DELETES_AFTER,
            "frozen_time": max(as_int(frozen, "frozen_time"), now),
            "livemode": False,
            "name": req.params.get("name"),
            "status": "ready",
            "status_details": {},
        }
        return self.store.render(self.store.put(clock))

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], KIND))

    def list_(self, req: Request) -> Obj:
        return paginate(self.store, self.store.all(KIND), req.params, "/v1/test_helpers/test_clocks")

    def advance(self, req: Request) -> Obj:
        clock = self.store.get(req.path_params["id"], KIND)
        target = as_int(req.params.get("frozen_time"), "frozen_time")
        if target < clock["frozen_time"]:
            raise invalid("frozen_time must be later than the clock's current frozen_time.", param="frozen_time")
        self.clock.advance_to(target)
        clock["frozen_time"] = target
        return self.store.render(clock)

    def delete(self, req: Request) -> Obj:
        clock = self.store.get(req.path_params["id"], KIND)
        self.store.delete(clock["id"])
        return {"id": clock["id"], "object": KIND, "deleted": True}
