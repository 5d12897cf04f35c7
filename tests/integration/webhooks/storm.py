"""The event storm: subscriptions driven through their lifecycle on the Stripe emulator (its API and clock), every
event it emitted delivered (plus duplicates, shuffled) by concurrent workers through the webhook's API Gateway
entry, into DynamoDB; the emulator's final objects are the oracle.

Shared by tests/integration/webhooks/test_webhook_storm.py (``make test``) and bench/webhook_storm_bench.py (the
same full 10,000 events over 500 subscriptions, with figures).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import stripe

from devstack.stripe_emulator import StripeEmulator
from tests.integration.webhooks.harness import Harness, build_harness
from tests.support.events import RECORDED_PARTNER_SOURCE, eventbridge_envelope, http_api_event
from tollgate import errors
from tollgate.adapters.dynamodb.subscription_repository import to_attribute
from tollgate.adapters.stripe_api.reader import SdkStripeReader
from tollgate.domain import projection
from tollgate.domain.signatures import sign
from tollgate.domain.subscriptions import StateWrite, WriteOutcome, WriteResult
from tollgate.http.responses import status_for
from tollgate.http.webhook_request import header, raw_body
from tollgate.services.stripe_event_bridge import BridgedMessage, StripeEventBridge
from tollgate.services.webhook import WebhookDelivery
from tollgate.services.webhook_handlers import SNAPSHOT_HANDLERS

DAY = 86_400
STORM_KEY = "sk" + "_test_" + "storm"
#: The fields compared with the emulator's final subscription.
COMPARED = ("status", "price_id", "quantity", "current_period_end", "cancel_at_period_end", "cancel_at", "trial_end")


class InProcessHTTPClient(stripe.HTTPClient):
    """stripe-python talking to the emulator's request pipeline directly (no sockets): same wire format."""

    name = "inprocess"

    def __init__(self, emu: StripeEmulator) -> None:
        super().__init__()
        self._emu = emu

    def request(self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None) -> Any:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = post_data if isinstance(post_data, bytes) else (post_data or "").encode()
        answer = self._emu.handle(method.upper(), path, dict(headers or {}), body)
        return answer.body.decode(), answer.status, answer.headers

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def inprocess_client(emu: StripeEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        STORM_KEY, base_addresses={"api": "http://emulator.local"}, http_client=InProcessHTTPClient(emu)
    )


def _control(emu: StripeEmulator, path: str, payload: dict[str, Any]) -> None:
    answer = emu.handle("POST", path, {"Content-Type": "application/json"}, json.dumps(payload).encode())
    assert answer.status == 200, answer.body


def handled(event: Mapping[str, Any]) -> bool:
    return event["type"] in SNAPSHOT_HANDLERS


def drive_lifecycles(  # noqa: C901 - one branch per lifecycle step the storm drives
    emu: StripeEmulator, subscriptions: int, target_events: int, seed: int = 7
) -> list[dict[str, Any]]:
    """Create `subscriptions` subscriptions and move them (updates, cancellations, card failures, clock advances)
    until the emulator emitted at least `target_events` events of handled types. Returns those events."""
    rng = random.Random(seed)
    client = inprocess_client(emu)
    subs: list[tuple[str, str]] = []  # (subscription id, item id)
    for i in range(subscriptions):
        customer = client.v1.customers.create({"metadata": {"app_user_id": f"user-storm-{i}"}})
        _control(emu, f"/_emulator/customers/{customer.id}/card", {"card": "4242424242424242"})
        params: dict[str, Any] = {
            "customer": customer.id,
            "items": [{"price": rng.choice(["price_starter_monthly", "price_team_monthly"]), "quantity": 1}],
        }
        if rng.random() < 0.2:
            params["trial_period_days"] = rng.choice([3, 7, 14])
        sub = client.v1.subscriptions.create(params)
        subs.append((sub.id, sub["items"].data[0].id))

    def count() -> int:
        return sum(1 for e in emu.store.all("event") if handled(e))

    emitted, stalled = count(), 0
    while emitted < target_events and stalled < 20:
        for sub_id, item_id in rng.sample(subs, k=max(1, len(subs) // 3)):
            current = client.v1.subscriptions.retrieve(sub_id)
            if current.status in ("canceled", "incomplete_expired"):
                continue
            roll = rng.random()
            if roll < 0.6:
                client.v1.subscriptions.update(
                    sub_id,
                    {"items": [{"id": item_id, "quantity": rng.randint(1, 9)}], "proration_behavior": "none"},
                )
            elif roll < 0.68:
                client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": not current.cancel_at_period_end})
            elif roll < 0.78:
                card = "decline_on_charge" if rng.random() < 0.5 else "4242424242424242"
                _control(emu, f"/_emulator/customers/{current.customer}/card", {"card": card})
            elif roll < 0.785:
                client.v1.subscriptions.cancel(sub_id)
        emu.clock.advance(rng.choice([1, 3, 9]) * DAY)
        now = count()
        stalled = stalled + 1 if now == emitted else 0
        emitted = now
    return [e for e in reversed(emu.store.all("event")) if handled(e)]


def emulator_truth(emu: StripeEmulator) -> dict[str, dict[str, Any]]:
    """The emulator's final subscriptions, projected with the product's own field mapping."""
    client = inprocess_client(emu)
    truth: dict[str, dict[str, Any]] = {}
    for obj in emu.store.all("subscription"):
        sub = client.v1.subscriptions.retrieve(obj["id"]).to_dict()
        fields = projection.subscription_fields(sub, None)
        truth[obj["id"]] = {"customer_id": sub["customer"], **{k: fields.get(k) for k in COMPARED}}
    return truth


def table_mismatches(h: Harness, truth: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, Any, Any]]:
    mismatches: list[tuple[str, str, Any, Any]] = []
    by_customer: dict[str, dict[str, Any]] = {}
    for customer_id in {t["customer_id"] for t in truth.values()}:
        for state in h.repository.for_customer(customer_id):
            by_customer[state.subscription_id] = state.model_dump()
    for sub_id, expected in truth.items():
        stored = by_customer.get(sub_id)
        if stored is None:
            mismatches.append((sub_id, "missing", None, None))
            continue
        mismatches.extend((sub_id, k, stored.get(k), expected[k]) for k in COMPARED if stored.get(k) != expected[k])
    return mismatches


@dataclass
class StormResult:
    distinct_events: int
    deliveries: int
    non_2xx: int
    retried_deliveries: int
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)
    first_acks: dict[str, str] = field(default_factory=dict)


#: One delivery of one event body: (HTTP-like status, outcome label). A status >= 300 is retried if 409 or 5xx.
Send = Callable[[bytes, random.Random], tuple[int, str]]


def via_webhook(h: Harness) -> Send:
    """Signed, through the webhook's API Gateway entry (half of the bodies base64-encoded, as API Gateway may)."""

    def send(body: bytes, local: random.Random) -> tuple[int, str]:
        signature = sign(body, h.secrets[0], int(time.time()))
        api_event = http_api_event(
            "POST",
            "/webhooks/stripe",
            body=body,
            headers={"Stripe-Signature": signature},
            base64_body=local.random() < 0.5,
        )
        delivery = WebhookDelivery(raw_body(api_event), header(api_event, "stripe-signature"), 9000)
        return 200, h.service.receive(delivery).result

    return send


def via_eventbridge(bridge: StripeEventBridge, source: str = RECORDED_PARTNER_SOURCE) -> Send:
    """Inside Stripe's EventBridge envelope, as the Stripe events queue hands it to the function (an SQS record);
    a record returned for retry stands for SQS's redelivery (status 500)."""

    def send(body: bytes, local: random.Random) -> tuple[int, str]:
        envelope = eventbridge_envelope(json.loads(body), source=source)
        (outcome,) = bridge.receive([BridgedMessage(str(local.random()), json.dumps(envelope))], 9000)
        return (500 if outcome.retry else 200), outcome.result

    return send


def deliver_storm(  # noqa: C901 - the sender simulator: duplicates, workers and retries in one loop
    h: Harness,
    events: list[dict[str, Any]],
    *,
    workers: int = 8,
    duplicate_share: float = 0.2,
    seed: int = 11,
    paths: Sequence[Send] | None = None,
) -> StormResult:
    """Every event once per path (default: the webhook's API Gateway entry) plus `duplicate_share` duplicates,
    shuffled, by `workers` threads. A non-2xx is counted and re-queued (Stripe and SQS retry)."""
    rng = random.Random(seed)
    senders = list(paths) if paths else [via_webhook(h)]
    bodies = [json.dumps(e).encode() for e in events]
    firsts = [(i, p) for p in range(len(senders)) for i in range(len(bodies))]
    extra = int(len(firsts) * duplicate_share)
    order = firsts + [(rng.randrange(len(bodies)), rng.randrange(len(senders))) for _ in range(extra)]
    rng.shuffle(order)
    work: queue.Queue[tuple[int, int]] = queue.Queue()
    for item in order:
        work.put(item)
    lock = threading.Lock()
    result = StormResult(len(bodies), len(order), 0, 0, 0.0)

    def worker(worker_seed: int) -> None:
        local = random.Random(worker_seed)
        while True:
            try:
                index, path = work.get_nowait()
            except queue.Empty:
                return
            try:
                status, label = senders[path](bodies[index], local)
            except errors.TollgateError as exc:
                status, label = int(status_for(exc)), type(exc).__name__
            except Exception as exc:
                status, label = 502, f"unhandled {type(exc).__name__}: {exc}"[:200]
            with lock:
                result.outcomes[label] += 1
                if status >= 300:
                    result.non_2xx += 1
                    if status == 409 or status >= 500:  # Stripe retries these; a 4xx would be final
                        result.retried_deliveries += 1
                        work.put((index, path))
                else:
                    result.first_acks.setdefault(events[index]["id"], label)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(seed + i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def storm_harness(client: Any, table: str, emu: StripeEmulator) -> Harness:
    """The webhook service on DynamoDB `client`, fetch-latest served by the emulator, real time."""
    h = build_harness(client, table, wait_seconds=2.0)
    client = inprocess_client(emu)
    h.service.context = type(h.service.context)(reader=SdkStripeReader(lambda: client), catalog=None)
    h.service.clock = time.time
    h.service.sleep = time.sleep
    h.repository._clock = time.time
    h.service.ledger._clock = time.time  # type: ignore[attr-defined]
    return h


class ArrivalOrderRepository:
    """The CONTROL: every snapshot written as it arrives (no watermark condition): the naive projection."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write_if_newer(self, write: StateWrite, *, after_tie: bool = False) -> WriteResult:
        client, table = self._inner._client, self._inner._table
        names = {f"#f{i}": k for i, k in enumerate(sorted(write.fields))}
        sets = [f"#f{i} = :f{i}" for i, k in enumerate(sorted(write.fields)) if write.fields[k] is not None]
        values = {f":f{i}": to_attribute(write.fields[k]) for i, k in enumerate(sorted(write.fields))
                  if write.fields[k] is not None}  # fmt: skip
        names["#wm"], values[":wm"] = "watermark", {"S": write.watermark.encode()}
        sets.append("#wm = :wm")
        used = {n for s in sets for n in s.split() if n.startswith("#")}
        client.update_item(
            TableName=table,
            Key={"pk": {"S": f"CUSTOMER#{write.customer_id}"}, "sk": {"S": write.sort_key}},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames={k: v for k, v in names.items() if k in used},
            ExpressionAttributeValues=values,
        )
        return WriteResult(WriteOutcome.APPLIED, {})


class CountingDynamoDB:
    """Counts DynamoDB calls by operation (for the calls-per-event benchmark); each call atomic, like AtomicDynamoDB."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                return attribute(*args, **kwargs)

        return counted
