"""The events Stripe failed to deliver to this endpoint (``GET /v1/events?delivery_success=false``), for replay.

Stripe keeps events listable for 30 days; the listing is paginated newest first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import stripe

from tollgate.adapters.stripe_client import stripe_errors


class SdkUndeliveredEvents:
    PAGE_SIZE = 100

    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def since(self, created_after: int) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "delivery_success": False,
            "created": {"gte": created_after},
            "limit": self.PAGE_SIZE,
        }
        while True:
            with stripe_errors("events.list"):
                page = self._client().v1.events.list(params)  # type: ignore[arg-type]
            # The event as Stripe's JSON, exactly as a delivery carries it (to_dict would keep Decimals).
            yield from (json.loads(str(event)) for event in page.data)
            if not page.has_more or not page.data:
                return
            params = {**params, "starting_after": page.data[-1].id}
