"""Events and their delivery: snapshot events to webhook endpoints, thin events to v2 event destinations.

Each event is signed (`Stripe-Signature: t=<wall time>,v1=<hmac-sha256(secret, f"{t}.{body}")>`) and POSTed to
every enabled endpoint whose `enabled_events` match. Each endpoint has one worker delivering in order; a non-2xx
(3xx included) is retried with exponential backoff from a configurable base delay, up to `max_attempts`.
`pending_webhooks` counts the endpoints still waiting for a 2xx, which backs `delivery_success` filtering.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from .clock import Clock
from .ids import new_id
from .store import Obj, Store

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


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header value for `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _matches(enabled: list[str], event_type: str) -> bool:
    return "*" in enabled or event_type in enabled


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    endpoint_id: str = field(compare=False)
    url: str = field(compare=False)
    payload: bytes = field(compare=False, repr=False)
    secret: str = field(compare=False, repr=False)
    thin: bool = field(compare=False, default=False)
    attempts: list[dict[str, Any]] = field(compare=False, default_factory=list)
    delivered: bool = field(compare=False, default=False)
    finished: threading.Event = field(compare=False, default_factory=threading.Event)
    first_done: threading.Event = field(compare=False, default_factory=threading.Event)

    def summary(self) -> dict[str, Any]:
        return {
            "event": self.event_id,
            "endpoint": self.endpoint_id,
            "url": self.url,
            "thin": self.thin,
            "delivered": self.delivered,
            "attempts": list(self.attempts),
        }


class _EndpointWorker:
    """Serial delivery for one endpoint, so first attempts arrive in emission order."""

    def __init__(self, bus: EventBus, endpoint_id: str) -> None:
        self.bus = bus
        self.endpoint_id = endpoint_id
        self.heap: list[Delivery] = []
        self.cond = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name=f"deliver-{endpoint_id}", daemon=True)
        self.thread.start()

    def push(self, delivery: Delivery) -> None:
        with self.cond:
            heapq.heappush(self.heap, delivery)
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and (not self.heap or self.heap[0].due > time.monotonic()):
                    timeout = None if not self.heap else max(0.0, self.heap[0].due - time.monotonic())
                    self.cond.wait(timeout)
                if self.stopped:
                    return
                delivery = heapq.heappop(self.heap)
            self.bus.attempt(delivery)
            if not delivery.delivered and len(delivery.attempts) < self.bus.max_attempts:
                delay = self.bus.retry_base_seconds * (2 ** (len(delivery.attempts) - 1))
                delivery.due = time.monotonic() + delay
                self.push(delivery)
            else:
                delivery.finished.set()


class EventBus:
    """Creates events, stores them, and fans them out to endpoints."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        api_version: str,
        retry_base_seconds: float = 60.0,
        max_attempts: int = 4,
        delivery_timeout_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.api_version = api_version
        self.retry_base_seconds = retry_base_seconds
        self.max_attempts = max_attempts
        self.delivery_timeout_seconds = delivery_timeout_seconds
        self.deliveries: list[Delivery] = []
        self._workers: dict[str, _EndpointWorker] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._session = requests.Session()
        self.request_context = threading.local()
        self.now_fn: Callable[[], int] = clock.now_int
        # Called (under the store lock) after each snapshot event, e.g. to derive entitlement summaries.
        self.listeners: list[Callable[[str, Obj], None]] = []

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
                "created": self.now_fn(),
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False,
                "pending_webhooks": 0,
                "request": self._request_ref(),
                "type": event_type,
            }
            if previous_attributes is not None:
                event["data"]["previous_attributes"] = previous_attributes
            self.store.put(event)
            targets = self._targets(event_type, obj)
            if obj.get("id") is None:
                # An object without an id (invoice.upcoming's preview) cannot be a thin event's related object.
                targets = [(endpoint, thin) for endpoint, thin in targets if not thin]
            event["pending_webhooks"] = len(targets)
            for endpoint, thin in targets:
                if thin:
                    v2 = self._v2_event("v1." + event_type, obj["id"], obj["object"], event["created"])
                    self._queue(event["id"], endpoint, self._thin_payload(v2), thin=True)
                else:
                    body = copy.deepcopy(event)
                    version = endpoint.get("api_version") or endpoint.get("snapshot_api_version")
                    body["api_version"] = version or self.api_version
                    self._queue(event["id"], endpoint, json.dumps(body, indent=2).encode(), thin=False)
            for listener in self.listeners:
                listener(event_type, obj)
            return event

    def emit_v2(
        self, event_type: str, related_id: str | None, related_type: str | None, data: Obj | None = None
    ) -> Obj:
        """A v2-only thin event (pricing-plan subscriptions, meter error reports), for thin destinations only.

        `related_id=None` makes an event without a related object (e.g. `v1.billing.meter.no_meter_found`).
        """
        with self.store.lock:
            v2 = self._v2_event(event_type, related_id, related_type, self.now_fn(), data)
            dests = [
                d
                for d in self.store.all("v2.core.event_destination")
                if d["status"] == "enabled"
                and d["event_payload"] == "thin"
                and _matches(d["enabled_events"], event_type)
            ]
            self.store.side(v2["id"])["pending"] = len(dests)
            for dest in dests:
                self._queue(v2["id"], dest, self._thin_payload(v2), thin=True)
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
        body = {k: v2[k] for k in ("id", "object", "type", "created", "livemode", "context", "reason")}
        if v2["related_object"] is not None:
            body["related_object"] = v2["related_object"]
        return json.dumps(body).encode()

    def _targets(self, event_type: str, obj: Obj) -> list[tuple[Obj, bool]]:
        del obj
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

    # ---- delivery -----------------------------------------------------------------------------------

    def _queue(self, event_id: str, endpoint: Obj, payload: bytes, thin: bool) -> None:
        secret = self.store.side(endpoint["id"])["secret"]
        url = endpoint["url"] if "url" in endpoint else endpoint["webhook_endpoint"]["url"]
        delivery = Delivery(
            due=time.monotonic(),
            seq=next(self._seq),
            event_id=event_id,
            endpoint_id=endpoint["id"],
            url=url,
            payload=payload,
            secret=secret,
            thin=thin,
        )
        with self._lock:
            self.deliveries.append(delivery)
            worker = self._workers.get(endpoint["id"])
            if worker is None:
                worker = _EndpointWorker(self, endpoint["id"])
                self._workers[endpoint["id"]] = worker
        worker.push(delivery)

    def attempt(self, delivery: Delivery) -> None:
        """One signed POST; records status and flips `pending_webhooks` on the first 2xx."""
        header = sign(delivery.payload, delivery.secret)
        started = time.time()
        status: int | None
        error: str | None = None
        try:
            resp = self._session.post(
                delivery.url,
                data=delivery.payload,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": header,
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                },
                timeout=self.delivery_timeout_seconds,
                allow_redirects=False,
            )
            status = resp.status_code
        except requests.RequestException as exc:
            status, error = None, type(exc).__name__
        ok = status is not None and 200 <= status < 300
        delivery.attempts.append({"status": status, "error": error, "at": started, "signature": header})
        if ok:
            delivery.delivered = True
            with self.store.lock:
                event = self.store.find(delivery.event_id)
                if event is not None and "pending_webhooks" in event:
                    event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                elif event is not None:
                    side = self.store.side(delivery.event_id)
                    side["pending"] = max(0, side.get("pending", 1) - 1)
        delivery.first_done.set()

    def wait(self, event_ids: list[str], timeout: float) -> bool:
        """Block until each delivery of these events had its first attempt (bounded)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = [d for d in self.deliveries if d.event_id in set(event_ids)]
        return all(d.first_done.wait(max(0.0, deadline - time.monotonic())) for d in pending)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Tests: wait until every queued delivery finished (delivered or out of attempts)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [d for d in self.deliveries if not d.finished.is_set()]
            if not pending:
                return True
            if not pending[0].finished.wait(max(0.0, deadline - time.monotonic())):
                return False

    def stop(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.stop()
            self._workers.clear()

    def reset(self) -> None:
        self.stop()
        with self._lock:
            self.deliveries.clear()
