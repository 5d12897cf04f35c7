"""`/v1/webhook_endpoints` and `/v2/core/event_destinations` (snapshot or thin payloads): create, update,
list, disable. Signing secrets are shown only in the create response (v2: with ``include``), like Stripe."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.eventbridge_delivery import partner_event_source
from devstack.stripe_emulator.forms import as_bool, as_list, merge_metadata
from devstack.stripe_emulator.ids import new_id, webhook_secret
from devstack.stripe_emulator.isotime import iso
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, paginate

DESTINATION = "v2.core.event_destination"
REQUIRED_FOR_DESTINATION = ("name", "type", "event_payload", "enabled_events")


class WebhookEndpointsApi:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v1/webhook_endpoints", self.create),
            RouteSpec("GET", "/v1/webhook_endpoints", self.list_),
            RouteSpec("GET", "/v1/webhook_endpoints/{id}", self.retrieve),
            RouteSpec("POST", "/v1/webhook_endpoints/{id}", self.update),
            RouteSpec("DELETE", "/v1/webhook_endpoints/{id}", self.delete),
        ]

    def create(self, req: Request) -> Obj:
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
            "created": self.clock.now_int(),
            "description": p.get("description"),
            "enabled_events": events,
            "livemode": False,
            "metadata": merge_metadata({}, p.get("metadata")),
            "status": "enabled",
            "url": str(p["url"]),
        }
        self.store.put(we)
        secret = webhook_secret()
        self.store.side(we["id"])["secret"] = secret
        out = self.store.render(we)
        out["secret"] = secret  # only shown on creation, like Stripe
        return out

    def retrieve(self, req: Request) -> Obj:
        return self.store.render(self.store.get(req.path_params["id"], "webhook_endpoint"))

    def update(self, req: Request) -> Obj:
        we = self.store.get(req.path_params["id"], "webhook_endpoint")
        p = req.params
        if "enabled_events" in p:
            we["enabled_events"] = [str(e) for e in as_list(p["enabled_events"])]
        if p.get("url"):
            we["url"] = str(p["url"])
        if "disabled" in p:
            we["status"] = "disabled" if as_bool(p["disabled"]) else "enabled"
        if "description" in p:
            we["description"] = p["description"] or None
        if "metadata" in p:
            we["metadata"] = merge_metadata(we["metadata"], p["metadata"])
        if "api_version" in p:
            raise invalid("Received unknown parameter: api_version", param="api_version")
        return self.store.render(we)

    def delete(self, req: Request) -> Obj:
        we = self.store.get(req.path_params["id"], "webhook_endpoint")
        self.store.delete(we["id"])
        return {"id": we["id"], "object": "webhook_endpoint", "deleted": True}

    def list_(self, req: Request) -> Obj:
        return paginate(self.store, self.store.all("webhook_endpoint"), req.params, "/v1/webhook_endpoints", req.expand)


class EventDestinationsApi:
    def __init__(self, store: Store, clock: Clock, api_version: str) -> None:
        self.store = store
        self.clock = clock
        self.api_version = api_version

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", "/v2/core/event_destinations", self.create),
            RouteSpec("GET", "/v2/core/event_destinations", self.list_),
            RouteSpec("GET", "/v2/core/event_destinations/{id}", self.retrieve),
            RouteSpec("POST", "/v2/core/event_destinations/{id}", self.update),
            RouteSpec("DELETE", "/v2/core/event_destinations/{id}", self.delete),
            RouteSpec("POST", "/v2/core/event_destinations/{id}/disable", self.disable),
            RouteSpec("POST", "/v2/core/event_destinations/{id}/enable", self.enable),
        ]

    def _render(self, dest: Obj, include: list[Any], *, creating: bool = False) -> Obj:
        """Stripe redacts the URL unless included, and shows the signing secret only when creating."""
        out = self.store.render(dest)
        if dest["type"] == "amazon_eventbridge":
            return out
        out["webhook_endpoint"] = {
            "signing_secret": None,
            "url": dest["webhook_endpoint"]["url"] if "webhook_endpoint.url" in include else None,
        }
        if creating and "webhook_endpoint.signing_secret" in include:
            out["webhook_endpoint"]["signing_secret"] = self.store.side(dest["id"])["secret"]
        return out

    def create(self, req: Request) -> Obj:
        p = req.params
        for field in REQUIRED_FOR_DESTINATION:
            if not p.get(field):
                raise missing_param(field)
        if p["type"] not in ("webhook_endpoint", "amazon_eventbridge"):
            raise invalid("Only webhook_endpoint and amazon_eventbridge destinations are emulated.", param="type")
        if p["event_payload"] not in ("thin", "snapshot"):
            raise invalid("event_payload must be thin or snapshot.", param="event_payload")
        dest_id = new_id("ed_test", 32)
        url = (p.get("webhook_endpoint") or {}).get("url")
        bridge = partner_event_source(dest_id, p) if p["type"] == "amazon_eventbridge" else None
        if not url and bridge is None:
            raise missing_param("webhook_endpoint.url")
        now = self.clock.now_int()
        dest: Obj = {
            "id": dest_id,
            "object": DESTINATION,
            "amazon_eventbridge": bridge,
            "created": iso(now),
            "description": p.get("description", ""),
            "enabled_events": [str(e) for e in p["enabled_events"]],
            "event_payload": p["event_payload"],
            "events_from": p.get("events_from") or ["self"],
            "livemode": False,
            "metadata": merge_metadata({}, p.get("metadata")),
            "name": p["name"],
            "snapshot_api_version": p.get("snapshot_api_version")
            or (self.api_version if p["event_payload"] == "snapshot" else None),
            "status": "enabled",
            "status_details": None,
            "type": p["type"],
            "updated": iso(now),
            "webhook_endpoint": {"signing_secret": None, "url": str(url)} if bridge is None else None,
        }
        self.store.put(dest)
        self.store.side(dest["id"])["secret"] = webhook_secret()
        return self._render(dest, as_list(p.get("include")), creating=True)

    def update(self, req: Request) -> Obj:
        dest = self.store.get(req.path_params["id"], DESTINATION)
        p = req.params
        if "enabled_events" in p:
            events = [str(e) for e in as_list(p["enabled_events"])]
            if not events:
                raise invalid("enabled_events cannot be empty.", param="enabled_events")
            dest["enabled_events"] = events
        for key in ("name", "description"):
            if key in p:
                dest[key] = str(p[key])
        if "metadata" in p:
            dest["metadata"] = merge_metadata(dest["metadata"], p["metadata"])
        url = (p.get("webhook_endpoint") or {}).get("url")
        if url and dest["webhook_endpoint"] is not None:
            dest["webhook_endpoint"]["url"] = str(url)
        dest["updated"] = iso(self.clock.now_int())
        return self._render(dest, as_list(p.get("include")))

    def retrieve(self, req: Request) -> Obj:
        dest = self.store.get(req.path_params["id"], DESTINATION)
        return self._render(dest, as_list(req.params.get("include")))

    def list_(self, req: Request) -> Obj:
        include = as_list(req.params.get("include"))
        data = [self._render(d, include) for d in self.store.all(DESTINATION)]
        return {"data": data, "next_page_url": None, "previous_page_url": None}

    def delete(self, req: Request) -> Obj:
        dest = self.store.get(req.path_params["id"], DESTINATION)
        self.store.delete(dest["id"])
        return {"id": dest["id"], "object": DESTINATION, "deleted": True}

    def disable(self, req: Request) -> Obj:
        return self._set_status(req, "disabled")

    def enable(self, req: Request) -> Obj:
        return self._set_status(req, "enabled")

    def _set_status(self, req: Request, status: str) -> Obj:
        dest = self.store.get(req.path_params["id"], DESTINATION)
        dest["status"] = status
        return self._render(dest, [])
