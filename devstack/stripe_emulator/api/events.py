"""`/v1/events` (type/types/delivery_success/created filters) and `/v2/core/events` (thin events)."""

from __future__ import annotations

import operator
from typing import Any

from devstack.stripe_emulator.errors import invalid, not_found
from devstack.stripe_emulator.forms import as_bool, as_list
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate

CREATED_OPERATORS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _created_filter(objs: list[Obj], created: Any) -> list[Obj]:
    if created in (None, ""):
        return objs
    if not isinstance(created, dict):
        return [o for o in objs if o["created"] == int(created)]
    for op, fn in CREATED_OPERATORS.items():
        if op in created:
            bound = int(created[op])
            objs = [o for o in objs if fn(int(o["created"]), bound)]
    return objs


def _type_filter(objs: list[Obj], event_type: str) -> list[Obj]:
    """`type`, with a trailing `*` as a prefix wildcard."""
    if event_type.endswith("*"):
        return [o for o in objs if o["type"].startswith(event_type[:-1])]
    return [o for o in objs if o["type"] == event_type]


class EventsApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/v1/events", self.list_),
            RouteSpec("GET", "/v1/events/{id}", self.retrieve),
            RouteSpec("GET", "/v2/core/events", self.list_v2),
            RouteSpec("GET", "/v2/core/events/{id}", self.retrieve_v2),
        ]

    def list_(self, req: Request) -> Obj:
        p = req.params
        objs = self.store.all("event")
        if p.get("type"):
            objs = _type_filter(objs, str(p["type"]))
        types = as_list(p.get("types"))
        if types:
            objs = [o for o in objs if o["type"] in types]
        if "delivery_success" in p:
            want = as_bool(p["delivery_success"])
            objs = [o for o in objs if (o["pending_webhooks"] == 0) == want]
        objs = _created_filter(objs, p.get("created"))
        return paginate(self.store, objs, p, "/v1/events", req.expand)

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "event"), req.expand)

    def retrieve_v2(self, req: Request) -> Obj:
        obj = self.store.find(req.path_params["id"])
        if obj is None or obj["object"] != "v2.core.event":
            raise not_found("event", req.path_params["id"])
        return self.store.render(obj)

    def list_v2(self, req: Request) -> Obj:
        p = req.params
        objs = self.store.all("v2.core.event")
        if p.get("object_id"):
            objs = [o for o in objs if (o["related_object"] or {}).get("id") == p["object_id"]]
        types = as_list(p.get("types"))
        if types:
            objs = [o for o in objs if o["type"] in types]
        limit = int(p.get("limit", 20))
        if not 1 <= limit <= 100:
            raise invalid("limit must be between 1 and 100", param="limit")
        start = int(p.get("page") or 0)
        page = objs[start : start + limit]
        nxt = f"/v2/core/events?page={start + limit}&limit={limit}" if len(objs) > start + limit else None
        prev = f"/v2/core/events?page={max(0, start - limit)}&limit={limit}" if start > 0 else None
        return {"data": [self.store.render(o) for o in page], "next_page_url": nxt, "previous_page_url": prev}
