"""v1 events (retrieve, list with type/types/delivery_success/created filters) and v2 core (thin) events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.errors import invalid, not_found
from devstack.stripe_emulator.forms import as_bool, as_list
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator


def _created_filter(objs: list[Obj], created: Any) -> list[Obj]:
    if created in (None, ""):
        return objs
    if not isinstance(created, dict):
        return [o for o in objs if o["created"] == int(created)]
    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    for op, fn in ops.items():
        if op in created:
            bound = int(created[op])
            objs = [o for o in objs if fn(int(o["created"]), bound)]
    return objs


def register(emu: StripeEmulator) -> None:
    store = emu.store

    def list_(req: Request) -> Obj:
        p = req.params
        objs = store.all("event")
        if p.get("type"):
            t = str(p["type"])
            if t.endswith("*"):
                objs = [o for o in objs if o["type"].startswith(t[:-1])]
            else:
                objs = [o for o in objs if o["type"] == t]
        types = as_list(p.get("types"))
        if types:
            objs = [o for o in objs if o["type"] in types]
        if "delivery_success" in p:
            want = as_bool(p["delivery_success"])
            objs = [o for o in objs if (o["pending_webhooks"] == 0) == want]
        objs = _created_filter(objs, p.get("created"))
        return paginate(store, objs, p, "/v1/events", req.expand)

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "event"), req.expand)

    def v2_retrieve(req: Request) -> Obj:
        obj = store.find(req.path_params["id"])
        if obj is None or obj["object"] != "v2.core.event":
            raise not_found("event", req.path_params["id"])
        return store.render(obj)

    def v2_list(req: Request) -> Obj:
        p = req.params
        objs = store.all("v2.core.event")
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
        return {"data": [store.render(o) for o in page], "next_page_url": nxt, "previous_page_url": prev}

    r = emu.router
    r.add("GET", "/v1/events", list_)
    r.add("GET", "/v1/events/{id}", retrieve)
    r.add("GET", "/v2/core/events", v2_list)
    r.add("GET", "/v2/core/events/{id}", v2_retrieve)
