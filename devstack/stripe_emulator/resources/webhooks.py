"""Webhook endpoints (v1) and event destinations (v2, snapshot or thin payloads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_bool, as_list
from devstack.stripe_emulator.ids import new_id, webhook_secret
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator


def register(emu: StripeEmulator) -> None:
    store = emu.store

    def create(req: Request) -> Obj:
        p = req.params
        if not p.get("url"):
            raise missing_param("url")
        events = [str(e) for e in as_list(p.get("enabled_events"))]
        if not events:
            raise missing_param("enabled_events")
        we: Obj = {
            "id": new_id("we", 24),
            "object": "webhook_endpoint",
            "api_version": p.get("api_version"),
            "application": None,
            "created": emu.clock.now_int(),
            "description": p.get("description"),
            "enabled_events": events,
            "livemode": False,
            "metadata": dict(p.get("metadata") or {}),
            "status": "enabled",
            "url": str(p["url"]),
        }
        store.put(we)
        secret = webhook_secret()
        store.side(we["id"])["secret"] = secret
        out = store.render(we)
        out["secret"] = secret  # only shown on creation, like Stripe
        return out

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "webhook_endpoint"))

    def update(req: Request) -> Obj:
        we = store.get(req.path_params["id"], "webhook_endpoint")
        p = req.params
        if "enabled_events" in p:
            we["enabled_events"] = [str(e) for e in as_list(p["enabled_events"])]
        if p.get("url"):
            we["url"] = str(p["url"])
        if "disabled" in p:
            we["status"] = "disabled" if as_bool(p["disabled"]) else "enabled"
        if "description" in p:
            we["description"] = p["description"] or None
        return store.render(we)

    def delete(req: Request) -> Obj:
        we = store.get(req.path_params["id"], "webhook_endpoint")
        store.delete(we["id"])
        return {"id": we["id"], "object": "webhook_endpoint", "deleted": True}

    def list_(req: Request) -> Obj:
        return paginate(store, store.all("webhook_endpoint"), req.params, "/v1/webhook_endpoints", req.expand)

    # ---- v2 event destinations ------------------------------------------------------------------------

    def render_dest(dest: Obj, include: list[Any]) -> Obj:
        out = store.render(dest)
        if "webhook_endpoint.signing_secret" in include or "webhook_endpoint.url" in include:
            out["webhook_endpoint"]["signing_secret"] = store.side(dest["id"])["secret"]
        return out

    def dest_create(req: Request) -> Obj:
        p = req.params
        for field in ("name", "type", "event_payload", "enabled_events"):
            if not p.get(field):
                raise missing_param(field)
        if p["type"] != "webhook_endpoint":
            raise invalid("Only webhook_endpoint destinations are emulated.", param="type")
        if p["event_payload"] not in ("thin", "snapshot"):
            raise invalid("event_payload must be thin or snapshot.", param="event_payload")
        url = (p.get("webhook_endpoint") or {}).get("url")
        if not url:
            raise missing_param("webhook_endpoint.url")
        now = emu.clock.now_int()
        from devstack.stripe_emulator.events import iso

        dest: Obj = {
            "id": new_id("ed_test", 32),
            "object": "v2.core.event_destination",
            "amazon_eventbridge": None,
            "created": iso(now),
            "description": p.get("description", ""),
            "enabled_events": [str(e) for e in p["enabled_events"]],
            "event_payload": p["event_payload"],
            "events_from": p.get("events_from") or ["self"],
            "livemode": False,
            "metadata": dict(p.get("metadata") or {}),
            "name": p["name"],
            "snapshot_api_version": p.get("snapshot_api_version")
            or (emu.api_version if p["event_payload"] == "snapshot" else None),
            "status": "enabled",
            "status_details": None,
            "type": "webhook_endpoint",
            "updated": iso(now),
            "webhook_endpoint": {"signing_secret": None, "url": str(url)},
        }
        store.put(dest)
        store.side(dest["id"])["secret"] = webhook_secret()
        return render_dest(dest, ["webhook_endpoint.signing_secret"])

    def dest_retrieve(req: Request) -> Obj:
        dest = store.get(req.path_params["id"], "v2.core.event_destination")
        return render_dest(dest, as_list(req.params.get("include")))

    def dest_list(req: Request) -> Obj:
        data = [render_dest(d, as_list(req.params.get("include"))) for d in store.all("v2.core.event_destination")]
        return {"data": data, "next_page_url": None, "previous_page_url": None}

    def dest_delete(req: Request) -> Obj:
        dest = store.get(req.path_params["id"], "v2.core.event_destination")
        store.delete(dest["id"])
        return {"id": dest["id"], "object": "v2.core.event_destination", "deleted": True}

    def dest_toggle(status: str) -> Any:
        def handler(req: Request) -> Obj:
            dest = store.get(req.path_params["id"], "v2.core.event_destination")
            dest["status"] = status
            return render_dest(dest, [])

        return handler

    r = emu.router
    r.add("POST", "/v1/webhook_endpoints", create)
    r.add("GET", "/v1/webhook_endpoints", list_)
    r.add("GET", "/v1/webhook_endpoints/{id}", retrieve)
    r.add("POST", "/v1/webhook_endpoints/{id}", update)
    r.add("DELETE", "/v1/webhook_endpoints/{id}", delete)
    r.add("POST", "/v2/core/event_destinations", dest_create)
    r.add("GET", "/v2/core/event_destinations", dest_list)
    r.add("GET", "/v2/core/event_destinations/{id}", dest_retrieve)
    r.add("DELETE", "/v2/core/event_destinations/{id}", dest_delete)
    r.add("POST", "/v2/core/event_destinations/{id}/disable", dest_toggle("disabled"))
    r.add("POST", "/v2/core/event_destinations/{id}/enable", dest_toggle("enabled"))
