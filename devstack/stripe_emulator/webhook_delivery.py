"""Signed delivery of event payloads to endpoints: one worker per endpoint, retries with exponential backoff.

``DeliveryFreedoms`` says how much of Stripe's latitude the deliveries take. Stripe promises at-least-once
delivery and no order ("Stripe doesn't guarantee the delivery of events in the order that they're generated"), and
says endpoints may receive the same event more than once. ``DeliveryFreedoms.serial()`` (the emulator's default)
delivers each event once, in emission order, at once; ``like_stripe()`` (the local stack's default) holds each first
attempt for a random time, so events overtake each other, and delivers a share of events twice.

Each payload is signed (`Stripe-Signature: t=<emulator clock>,v1=<hmac-sha256(secret, f"{t}.{body}")>`) and POSTed.
A non-2xx (3xx included) is retried from a configurable base delay, up to `max_attempts`; the first 2xx lowers
the event's `pending_webhooks` (v1) or pending count (v2), which backs `delivery_success` filtering.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from .eventbridge_delivery import EventBridgeDelivery
from .store import Obj, Store


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header value for `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass(frozen=True)
class DeliveryFreedoms:
    """The latitude deliveries take: a random hold in [0, ``max_delay_seconds``] before each first attempt (so events
    arrive out of order), and ``duplicate_fraction`` of events delivered a second time (an independent copy)."""

    max_delay_seconds: float = 0.0
    duplicate_fraction: float = 0.0
    seed: int | None = None

    @classmethod
    def serial(cls) -> DeliveryFreedoms:
        """Once each, in emission order, at once: for tests that need a fixed order."""
        return cls()

    @classmethod
    def like_stripe(cls, seed: int | None = None) -> DeliveryFreedoms:
        return cls(max_delay_seconds=0.4, duplicate_fraction=0.1, seed=seed)

    @property
    def is_serial(self) -> bool:
        return self.max_delay_seconds == 0 and self.duplicate_fraction == 0


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
    """One endpoint's deliveries, one at a time in order of due time: emission order when serial, the held
    order under Stripe-like freedoms."""

    def __init__(self, sender: WebhookSender, endpoint_id: str) -> None:
        self.sender = sender
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

    def _next_due(self) -> Delivery | None:
        """The next delivery once it is due, or None when stopped."""
        with self.cond:
            while not self.stopped and (not self.heap or self.heap[0].due > time.monotonic()):
                timeout = None if not self.heap else max(0.0, self.heap[0].due - time.monotonic())
                self.cond.wait(timeout)
            if self.stopped:
                return None
            return heapq.heappop(self.heap)

    def _run(self) -> None:
        while (delivery := self._next_due()) is not None:
            self.sender.attempt(delivery)
            if not delivery.delivered and len(delivery.attempts) < self.sender.max_attempts:
                delay = self.sender.retry_base_seconds * (2 ** (len(delivery.attempts) - 1))
                delivery.due = time.monotonic() + delay
                self.push(delivery)
            else:
                delivery.finished.set()


class WebhookSender:
    """Queues deliveries per endpoint and makes the signed POSTs."""

    def __init__(
        self,
        store: Store,
        retry_base_seconds: float = 60.0,
        max_attempts: int = 4,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        freedoms: DeliveryFreedoms | None = None,
    ) -> None:
        self.store = store
        self.freedoms = freedoms or DeliveryFreedoms.serial()
        self._rng = random.Random(self.freedoms.seed)  # noqa: S311 - delivery timing, not security
        self._delivered: set[tuple[str, str]] = set()  # (event, endpoint): pending counts drop once per endpoint
        # Signatures carry Stripe's time (the emulator's clock): the receiver's tolerance check runs on the same one.
        self.clock = clock
        self.retry_base_seconds = retry_base_seconds
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self.deliveries: list[Delivery] = []
        self._workers: dict[str, _EndpointWorker] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._session = requests.Session()
        #: Deliveries to ``amazon_eventbridge`` destinations; None: nowhere to put them (they stay undelivered).
        self.bridge: EventBridgeDelivery | None = None

    def queue(self, event_id: str, endpoint: Obj, payload: bytes, thin: bool) -> None:
        if endpoint.get("type") == "amazon_eventbridge":
            # Stripe puts these on the destination's partner event source instead (eventbridge_delivery).
            if self.bridge is not None:
                self.bridge.queue(event_id, endpoint, payload, self._mark_delivered)
            return
        secret = self.store.side(endpoint["id"])["secret"]
        url = endpoint["url"] if "url" in endpoint else endpoint["webhook_endpoint"]["url"]
        with self._lock:
            copies = 2 if self._rng.random() < self.freedoms.duplicate_fraction else 1
            holds = [self._rng.uniform(0, self.freedoms.max_delay_seconds) for _ in range(copies)]
        for hold in holds:
            delivery = Delivery(
                due=time.monotonic() + hold,
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
        """One signed POST; records status and lowers the event's pending count on the first 2xx."""
        header = sign(delivery.payload, delivery.secret, int(self.clock()))
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
                timeout=self.timeout_seconds,
                allow_redirects=False,
            )
            status = resp.status_code
        except requests.RequestException as exc:
            status, error = None, type(exc).__name__
        ok = status is not None and 200 <= status < 300
        delivery.attempts.append({"status": status, "error": error, "at": started, "signature": header})
        if ok:
            delivery.delivered = True
            with self._lock:
                first = (delivery.event_id, delivery.endpoint_id) not in self._delivered
                self._delivered.add((delivery.event_id, delivery.endpoint_id))
            if first:  # a duplicate copy's success does not count the endpoint twice
                self._mark_delivered(delivery.event_id)
        delivery.first_done.set()

    def _mark_delivered(self, event_id: str) -> None:
        with self.store.lock:
            event = self.store.find(event_id)
            if event is not None and "pending_webhooks" in event:
                event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
            elif event is not None:
                side = self.store.side(event_id)
                side["pending"] = max(0, side.get("pending", 1) - 1)

    def wait(self, event_ids: list[str], timeout: float) -> bool:
        """Block until each delivery of these events had its first attempt (bounded)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = [d for d in self.deliveries if d.event_id in set(event_ids)]
        return all(d.first_done.wait(max(0.0, deadline - time.monotonic())) for d in pending)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery finished (delivered or out of attempts)."""
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
            self._delivered.clear()
