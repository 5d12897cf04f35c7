"""Delivery to ``amazon_eventbridge`` event destinations, the way Stripe does it: the destination gets a partner
event source ``aws.partner/stripe.com/<destination id>`` in the AWS account and region it names, and each event is
put on it inside EventBridge's envelope (``source`` the partner source, ``detail-type`` the event type,
``detail`` the event exactly as a webhook body carries it). Nothing is signed.

Locally the AWS side is a moto server: ``ensure_sources`` creates each destination's partner event source there
(what Stripe does when the destination is created), and events go to the bus associated with it (moto's
PutPartnerEvents only reaches the default bus, so the bus named after the source is addressed directly).
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable
from typing import Any

from .errors import invalid, missing_param
from .store import Obj, Store

PARTNER_PREFIX = "aws.partner/stripe.com/"


def partner_event_source(destination_id: str, params: Obj) -> Obj:
    """The ``amazon_eventbridge`` part of a new destination (status pending until a bus is associated)."""
    bridge = params.get("amazon_eventbridge") or {}
    account, region = str(bridge.get("aws_account_id") or ""), str(bridge.get("aws_region") or "")
    if not account:
        raise missing_param("amazon_eventbridge.aws_account_id")
    if not region:
        raise missing_param("amazon_eventbridge.aws_region")
    if not re.fullmatch(r"\d{12}", account):
        raise invalid("aws_account_id must be 12 digits.", param="amazon_eventbridge.aws_account_id")
    return {
        "aws_account_id": account,
        "aws_event_source_arn": f"arn:aws:events:{region}::event-source/{PARTNER_PREFIX}{destination_id}",
        "aws_event_source_status": "pending",
    }


def source_name(destination: Obj) -> str:
    return str(destination["amazon_eventbridge"]["aws_event_source_arn"]).split(":event-source/", 1)[1]


class EventBridgeDelivery:
    """Puts events on the destinations' partner event sources, in emission order, from one worker thread."""

    def __init__(self, events_client: Callable[[str], Any]) -> None:
        self._client = events_client  # region -> boto3 "events" client of the account the destinations name
        self._created: set[str] = set()
        self._work: queue.Queue[tuple[str, Obj, bytes, Callable[[str], None]] | None] = queue.Queue()
        self.delivered: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name="deliver-eventbridge", daemon=True)
        self._thread.start()

    @staticmethod
    def _region(destination: Obj) -> str:
        return str(destination["amazon_eventbridge"]["aws_event_source_arn"]).split(":")[3]

    def ensure_sources(self, store: Store) -> list[str]:
        """Each amazon_eventbridge destination's partner event source exists on the AWS side."""
        names = []
        for dest in store.all("v2.core.event_destination"):
            if dest.get("type") != "amazon_eventbridge":
                continue
            name = source_name(dest)
            if name not in self._created:
                self._client(self._region(dest)).create_partner_event_source(
                    Name=name, Account=dest["amazon_eventbridge"]["aws_account_id"]
                )
                self._created.add(name)
            names.append(name)
        return names

    def queue(self, event_id: str, destination: Obj, payload: bytes, mark: Callable[[str], None]) -> None:
        self._work.put((event_id, destination, payload, mark))

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            event_id, destination, payload, mark = item
            name = source_name(destination)
            body = json.loads(payload)
            try:
                answer = self._client(self._region(destination)).put_events(
                    Entries=[
                        {
                            "Source": name,
                            "DetailType": str(body["type"]),
                            "Detail": payload.decode(),
                            "EventBusName": name,
                        }
                    ]
                )
                ok = not answer.get("FailedEntryCount")
            except Exception as exc:
                ok = False
                self.delivered.append({"event": event_id, "source": name, "error": type(exc).__name__})
            if ok:
                self.delivered.append({"event": event_id, "source": name})
                mark(event_id)
            self._work.task_done()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        done = threading.Event()

        def drain() -> None:
            self._work.join()
            done.set()

        threading.Thread(target=drain, daemon=True).start()
        return done.wait(timeout)

    def stop(self) -> None:
        self._work.put(None)
