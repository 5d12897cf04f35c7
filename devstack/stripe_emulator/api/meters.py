"""`/v1/billing/meters`: create, retrieve, list, event summaries, deactivate and reactivate."""

from __future__ import annotations

from devstack.stripe_emulator.domain.meters import SUMMARY_STEPS, Meters
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_int
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate

REQUIRED_ON_CREATE = ("display_name", "event_name", "default_aggregation")
REQUIRED_FOR_SUMMARIES = ("customer", "start_time", "end_time")


class MetersApi:
    def __init__(self, store: Store, meters: Meters) -> None:
        self.store = store
        self.meters = meters

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/billing/meters/{id}/deactivate", self.deactivate),
            RouteSpec("POST", "/v1/billing/meters/{id}/reactivate", self.reactivate),
            RouteSpec("GET", "/v1/billing/meters", self.list_),
            RouteSpec("POST", "/v1/billing/meters", self.create),
            RouteSpec("GET", "/v1/billing/meters/{id}", self.retrieve),
            RouteSpec("GET", "/v1/billing/meters/{id}/event_summaries", self.summaries),
        ]

    def list_(self, req: Request) -> Obj:
        objs = self.store.all("billing.meter")
        if req.params.get("status"):
            objs = [o for o in objs if o["status"] == req.params["status"]]
        return paginate(self.store, objs, req.params, "/v1/billing/meters", req.expand)

    def create(self, req: Request) -> Obj:
        for field in REQUIRED_ON_CREATE:
            if not req.params.get(field):
                raise missing_param(field)
        return self.store.render(self.meters.make_meter(req.params))

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "billing.meter"))

    def summaries(self, req: Request) -> Obj:
        meter = self.store.get(req.path_params["id"], "billing.meter")
        p = req.params
        for field in REQUIRED_FOR_SUMMARIES:
            if p.get(field) in (None, ""):
                raise missing_param(field)
        start = as_int(p["start_time"], "start_time")
        end = as_int(p["end_time"], "end_time")
        if end <= start:
            raise invalid("end_time must be after start_time.", param="end_time")
        window = p.get("value_grouping_window")
        step = SUMMARY_STEPS.get(str(window)) if window else None
        if window and step is None:
            raise invalid("value_grouping_window must be hour or day.", param="value_grouping_window")
        data = self.meters.summaries(meter, p["customer"], start, end, step)
        return paginate(self.store, data, p, f"/v1/billing/meters/{meter['id']}/event_summaries")

    def deactivate(self, req: Request) -> Obj:
        return self._set_status(req, "inactive")

    def reactivate(self, req: Request) -> Obj:
        return self._set_status(req, "active")

    def _set_status(self, req: Request, status: str) -> Obj:
        meter = self.store.get(req.path_params["id"], "billing.meter")
        self.meters.set_status(meter, status)
        return self.store.render(meter)
