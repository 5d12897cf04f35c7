"""Events: snapshot events (v1) and thin events (v2), stored and fanned out to the endpoints that want them.

A v1 event goes to every enabled webhook endpoint and snapshot event destination whose `enabled_events` match,
and as a thin `v1.<type>` to thin destinations; v2-only events go to thin destinations. The signed POSTs and
their retries are `webhook_delivery.WebhookSender`'s job.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from .ids import new_id
from .isotime import iso
from .store import Obj, Store
from .webhook_delivery import Delivery, WebhookSender

URL_PREFIXES: dict[str, str] = {
    "customer": "/v1/customers/",
    "subscription": "/v1/subscriptions/",
    "invoice": "/v1/invoices/",
    "checkout.session": "/v1/checkout/sessions/",
    "billing.meter": "/v1/billing/meters/",
    "payment_method": "/v1/payment_methods/",
    "price": "/v1/prices/",
    "product": "/v1/products/",
    "billing_portal.session": "/v1/billing_portal/sessions/",
    "test_helpers.test_clock": "/v1/test_helpers/test_clocks/",
    "v2.billing.pricing_plan_subscription": "/v2/billing/pricing_plan_subscriptions/",
}

THIN_FIELDS = ("id", "object", "type", "created", "livemode", "context", "reason")


def _matches(enabled: list[str], event_type: str) -> bool:
    return "*" in enabled or event_type in enabled


class EventBus:
    """Creates events, stores them, and hands their payloads to the sender, per matching endpoint."""

    def __init__(self, store: Store, now: Callable[[], int], api_version: str, sender: WebhookSender) -> None:
        self.store = store
        self.now = now
        self.api_version = api_version
        self.sender = sender
        # (request id, idempotency key) of the API request being handled, for `event.request`.
        self.request_context = threading.local()
        # Called (under the store lock) after each snapshot event, e.g. to derive entitlement summaries.
        self.listeners: list[Callable[[str, Obj], None]] = []

    # ---- delivery, as tests and the control API see it ---------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        return self.sender.deliveries

    @property
    def max_attempts(self) -> int:
        return self.sender.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self.sender.max_attempts = value

    def wait(self, event_ids: list[str], timeout: float) -> bool:
        return self.sender.wait(event_ids, timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self.sender.wait_idle(timeout)

    def stop(self) -> None:
        self.sender.stop()

    def reset(self) -> None:
        self.sender.reset()

    # ---- creation -----------------------------------------------------------------------------------

    def _request_ref(self) -> dict[str, Any]:
        ctx = getattr(self.request_context, "value", None)
        if ctx is None:
            return {"id": None, "idempotency_key": None}
        return {"id": ctx[0], "idempotency_key": ctx[1]}

    def emit(self, event_type: str, obj: Obj, previous_attributes: dict[str, Any] | None = None) -> Obj:
        """Record a v1 snapshot event and queue its deliveries (snapshot and thin)."""
        with self.store.lock:
            event: Obj = {
                "id": new_id("evt"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.now(),
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False,
                "pending_webhooks": 0,
                "request": self._request_ref(),
                "type": event_type,
            }
            if previous_attributes is not None:
                event["data"]["previous_attributes"] = previous_attributes
            self.store.put(event)
            targets = self._targets(event_type)
            if obj.get("id") is None:
                # An object without an id (invoice.upcoming's preview) cannot be a thin event's related object.
                targets = [(endpoint, thin) for endpoint, thin in targets if not thin]
            event["pending_webhooks"] = len(targets)
            for endpoint, thin in targets:
                self._deliver(event, obj, endpoint, thin)
            for listener in self.listeners:
                listener(event_type, obj)
            return event

    def _deliver(self, event: Obj, obj: Obj, endpoint: Obj, thin: bool) -> None:
        if thin:
            v2 = self._v2_event("v1." + event["type"], obj["id"], obj["object"], event["created"])
            self.sender.queue(event["id"], endpoint, self._thin_payload(v2), thin=True)
            return
        body = copy.deepcopy(event)
        version = endpoint.get("api_version") or endpoint.get("snapshot_api_version")
        body["api_version"] = version or self.api_version
        self.sender.queue(event["id"], endpoint, json.dumps(body, indent=2).encode(), thin=False)

    def emit_v2(
        self, event_type: str, related_id: str | None, related_type: str | None, data: Obj | None = None
    ) -> Obj:
        """A v2-only thin event (pricing-plan subscriptions, meter error reports), for thin destinations only.

        `related_id=None` makes an event without a related object (e.g. `v1.billing.meter.no_meter_found`).
        """
        with self.store.lock:
            v2 = self._v2_event(event_type, related_id, related_type, self.now(), data)
            dests = [
                d
                for d in self.store.all("v2.core.event_destination")
                if d["status"] == "enabled"
                and d["event_payload"] == "thin"
                and _matches(d["enabled_events"], event_type)
            ]
            self.store.side(v2["id"])["pending"] = len(dests)
            for dest in dests:
                self.sender.queue(v2["id"], dest, self._thin_payload(v2), thin=True)
            return v2

    def _v2_event(
        self,
        event_type: str,
        related_id: str | None,
        related_type: str | None,
        created: float,
        data: Obj | None = None,
    ) -> Obj:
        related: Obj | None = None
        if related_id is not None and related_type is not None:
            prefix = URL_PREFIXES.get(related_type, "/v1/" + related_type.replace(".", "/") + "s/")
            related = {"id": related_id, "type": related_type, "url": prefix + related_id}
        v2: Obj = {
            "id": new_id("evt_test", 32),
            "object": "v2.core.event",
            "type": event_type,
            "created": iso(created),
            "livemode": False,
            "context": None,
            "reason": None,
            "related_object": related,
            "data": data or {},
            "changes": None,
        }
        self.store.put(v2)
        return v2

    @staticmethod
    def _thin_payload(v2: Obj) -> bytes:
        body = {k: v2[k] for k in THIN_FIELDS}
        if v2["related_object"] is not None:
            body["related_object"] = v2["related_object"]
        return json.dumps(body).encode()

    def _targets(self, event_type: str) -> list[tuple[Obj, bool]]:
        """(endpoint, thin?) for each endpoint that wants this v1 type, in registration order."""
        targets: list[tuple[Obj, bool]] = []
        for we in self.store.all("webhook_endpoint"):
            if we["status"] == "enabled" and _matches(we["enabled_events"], event_type):
                targets.append((we, False))
        for dest in self.store.all("v2.core.event_destination"):
            if dest["status"] != "enabled":
                continue
            thin = dest["event_payload"] == "thin"
            names = [event_type, "v1." + event_type] if thin else [event_type]
            if any(_matches(dest["enabled_events"], n) for n in names):
                targets.append((dest, thin))
        targets.reverse()  # store.all is newest first; deliver to endpoints in registration order
        return targets
