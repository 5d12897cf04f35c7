"""The state store: every Stripe object by id, per-type creation order, internal side data.

Objects are kept in Stripe's JSON shape; what Stripe would never show (card behaviour, meter event history) lives
in `internal`. One re-entrant lock guards everything: handlers run under it, deliveries happen outside it.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .errors import invalid, not_found

Obj = dict[str, Any]

# id prefix -> object type, used by generic `expand`
PREFIX_TYPES: dict[str, str] = {
    "cus_": "customer",
    "sub_": "subscription",
    "in_": "invoice",
    "price_": "price",
    "prod_": "product",
    "cs_": "checkout.session",
    "pm_": "payment_method",
    "si_": "subscription_item",
    "bpc_": "billing_portal.configuration",
    "mtr_": "billing.meter",
    "clock_": "test_helpers.test_clock",
}


class Store:
    """In-memory, thread-safe (by its RLock) object store."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[str, Obj] = {}
        self.by_type: dict[str, list[str]] = {}
        self.internal: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self._seq = itertools.count()
        self.order: dict[str, int] = {}
        self.virtual_expanders: dict[tuple[str, str], Callable[[Obj], Any]] = {}

    def put(self, obj: Obj) -> Obj:
        with self.lock:
            oid = obj["id"]
            if oid not in self.objects:
                self.by_type.setdefault(obj["object"], []).append(oid)
                self.order[oid] = next(self._seq)
            self.objects[oid] = obj
            return obj

    def get(self, oid: str, kind: str | None = None, param: str = "id") -> Obj:
        with self.lock:
            obj = self.objects.get(oid)
            if obj is None or oid in self.deleted or (kind is not None and obj["object"] != kind):
                raise not_found(kind or "object", oid, param)
            return obj

    def find(self, oid: str | None) -> Obj | None:
        if oid is None:
            return None
        with self.lock:
            obj = self.objects.get(oid)
            return None if obj is None or oid in self.deleted else obj

    def delete(self, oid: str) -> None:
        with self.lock:
            self.deleted.add(oid)

    def all(self, kind: str) -> list[Obj]:
        """Live objects of a type, newest first (Stripe's list order)."""
        with self.lock:
            ids = [i for i in self.by_type.get(kind, []) if i not in self.deleted]
            objs = [self.objects[i] for i in ids]
        objs.sort(key=lambda o: (o.get("created", 0), self.order[o["id"]]), reverse=True)
        return objs

    def side(self, oid: str) -> dict[str, Any]:
        with self.lock:
            return self.internal.setdefault(oid, {})

    def clear(self) -> None:
        with self.lock:
            self.objects.clear()
            self.by_type.clear()
            self.internal.clear()
            self.deleted.clear()
            self.order.clear()

    # ---- rendering -------------------------------------------------------------------------------------

    def render(self, obj: Obj, expand: Iterable[str] = ()) -> Obj:
        """Deep copy and apply `expand` paths (dotted, `data.` for lists)."""
        out = copy.deepcopy(obj)
        for path in expand:
            self._expand(out, path.split("."))
        return out

    def _expand(self, node: Any, parts: list[str]) -> None:
        if not parts or not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        if head == "data" and isinstance(node.get("data"), list) and node.get("object") == "list":
            for item in node["data"]:
                self._expand(item, rest)
            return
        virtual = self.virtual_expanders.get((node.get("object", ""), head))
        if virtual is not None:
            node[head] = virtual(node)
        value = node.get(head)
        if isinstance(value, str):
            target = self._lookup(value)
            if target is not None:
                node[head] = copy.deepcopy(target)
                value = node[head]
        if isinstance(value, list):
            for item in value:
                self._expand(item, rest)
        elif isinstance(value, dict):
            self._expand(value, rest)

    def _lookup(self, oid: str) -> Obj | None:
        with self.lock:
            obj = self.objects.get(oid)
        if obj is None:
            return None
        if oid in self.deleted:
            return {"id": oid, "object": obj["object"], "deleted": True}
        return obj


def paginate(
    store: Store,
    objs: list[Obj],
    params: dict[str, Any],
    url: str,
    expand: Iterable[str] = (),
) -> Obj:
    """A Stripe list object honouring limit / starting_after / ending_before (objs newest first)."""
    try:
        limit = int(params.get("limit", 10))
    except (TypeError, ValueError):
        raise invalid("Invalid integer: limit", param="limit") from None
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    ids = [o["id"] for o in objs]
    start = 0
    end = len(objs)
    if params.get("starting_after"):
        sid = params["starting_after"]
        if sid not in ids:
            raise invalid(f"No such object: '{sid}'", param="starting_after")
        start = ids.index(sid) + 1
        window = objs[start:]
        page, has_more = window[:limit], len(window) > limit
    elif params.get("ending_before"):
        eid = params["ending_before"]
        if eid not in ids:
            raise invalid(f"No such object: '{eid}'", param="ending_before")
        end = ids.index(eid)
        window = objs[:end]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = objs[:limit], len(objs) > limit
    item_expand = [e[len("data.") :] for e in expand if e.startswith("data.")]
    return {
        "object": "list",
        "data": [store.render(o, item_expand) for o in page],
        "has_more": has_more,
        "url": url,
    }


def list_object(data: list[Obj], url: str, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
