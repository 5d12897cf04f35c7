"""`/_emulator/*` control API (clock, faults, latency, request log, state, deliveries, reset) and test clocks.

Test clocks are a thin veneer over the single emulator clock: advancing any test clock advances emulator time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_int
from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, list_object, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator


def register(emu: StripeEmulator) -> None:
    store = emu.store

    def reset(_req: Request) -> Obj:
        emu.reset()
        return {"reset": True}

    def clock_get(_req: Request) -> Obj:
        return {"now": emu.clock.now()}

    def clock_advance(req: Request) -> Obj:
        p = req.params
        if "to" in p:
            emu.clock.advance_to(float(p["to"]))
        else:
            emu.clock.advance(float(p.get("seconds", 0)) + 86400 * float(p.get("days", 0)))
        return {"now": emu.clock.now()}

    def faults_add(req: Request) -> Obj:
        if not req.params.get("path"):
            raise missing_param("path")
        fault = emu.faults.add_from_json(req.params)
        return {"added": fault.path, "faults": emu.faults.snapshot()}

    def faults_get(_req: Request) -> Obj:
        return {"faults": emu.faults.snapshot(), "latency_ms": emu.faults.latency_ms}

    def faults_clear(_req: Request) -> Obj:
        emu.faults.clear()
        return {"faults": []}

    def latency(req: Request) -> Obj:
        emu.faults.latency_ms = int(req.params.get("ms", 0))
        return {"latency_ms": emu.faults.latency_ms}

    def requests_get(req: Request) -> Obj:
        with emu._log_lock:
            rows = list(emu.request_log)
        if req.params.get("path"):
            rows = [r for r in rows if r["path"] == req.params["path"]]
        if req.params.get("method"):
            rows = [r for r in rows if r["method"] == str(req.params["method"]).upper()]
        rows = [r for r in rows if r["kind"] != "control"]
        return list_object(rows, "/_emulator/requests")

    def requests_clear(_req: Request) -> Obj:
        with emu._log_lock:
            emu.request_log.clear()
        return {"cleared": True}

    def state(req: Request) -> Obj:
        kinds = [req.path_params["type"]] if "type" in req.path_params else sorted(store.by_type)
        return {k: [store.render(o) for o in store.all(k)] for k in kinds}

    def deliveries(_req: Request) -> Obj:
        return list_object([d.summary() for d in list(emu.events.deliveries)], "/_emulator/deliveries")

    def set_card(req: Request) -> Obj:
        cus = store.get(req.path_params["id"], "customer")
        card = req.params.get("card")
        if not card:
            raise missing_param("card")
        pm = emu.billing.attach_card(cus, str(card))
        return store.render(pm)

    # ---- test clocks ----------------------------------------------------------------------------------

    def tc_create(req: Request) -> Obj:
        frozen = req.params.get("frozen_time")
        if frozen in (None, ""):
            raise missing_param("frozen_time")
        now = emu.clock.now_int()
        clock: Obj = {
            "id": new_id("clock", 24),
            "object": "test_helpers.test_clock",
            "created": now,
            "deletes_after": now + 30 * 86400,
            "frozen_time": max(as_int(frozen, "frozen_time"), now),
            "livemode": False,
            "name": req.params.get("name"),
            "status": "ready",
            "status_details": {},
        }
        return store.render(store.put(clock))

    def tc_get(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "test_helpers.test_clock"))

    def tc_list(req: Request) -> Obj:
        return paginate(store, store.all("test_helpers.test_clock"), req.params, "/v1/test_helpers/test_clocks")

    def tc_advance(req: Request) -> Obj:
        clock = store.get(req.path_params["id"], "test_helpers.test_clock")
        target = as_int(req.params.get("frozen_time"), "frozen_time")
        if target < clock["frozen_time"]:
            raise invalid("frozen_time must be later than the clock's current frozen_time.", param="frozen_time")
        emu.clock.advance_to(target)
        clock["frozen_time"] = target
        return store.render(clock)

    def tc_delete(req: Request) -> Obj:
        clock = store.get(req.path_params["id"], "test_helpers.test_clock")
        store.delete(clock["id"])
        return {"id": clock["id"], "object": "test_helpers.test_clock", "deleted": True}

    def settings_get(_req: Request) -> Obj:
        return emu.billing.settings()

    def settings_set(req: Request) -> Obj:
        try:
            return emu.billing.configure(**req.params)
        except (TypeError, ValueError) as exc:
            raise invalid(str(exc)) from None

    r = emu.router
    c: Any = "control"
    r.add("GET", "/_emulator/settings", settings_get, c)
    r.add("POST", "/_emulator/settings", settings_set, c)
    r.add("POST", "/_emulator/reset", reset, c)
    r.add("GET", "/_emulator/clock", clock_get, c)
    r.add("POST", "/_emulator/clock/advance", clock_advance, c)
    r.add("POST", "/_emulator/faults", faults_add, c)
    r.add("GET", "/_emulator/faults", faults_get, c)
    r.add("DELETE", "/_emulator/faults", faults_clear, c)
    r.add("POST", "/_emulator/latency", latency, c)
    r.add("GET", "/_emulator/requests", requests_get, c)
    r.add("DELETE", "/_emulator/requests", requests_clear, c)
    r.add("GET", "/_emulator/state", state, c)
    r.add("GET", "/_emulator/state/{type}", state, c)
    r.add("GET", "/_emulator/deliveries", deliveries, c)
    r.add("POST", "/_emulator/customers/{id}/card", set_card, c)
    r.add("POST", "/v1/test_helpers/test_clocks", tc_create)
    r.add("GET", "/v1/test_helpers/test_clocks", tc_list)
    r.add("GET", "/v1/test_helpers/test_clocks/{id}", tc_get)
    r.add("POST", "/v1/test_helpers/test_clocks/{id}/advance", tc_advance)
    r.add("DELETE", "/v1/test_helpers/test_clocks/{id}", tc_delete)
