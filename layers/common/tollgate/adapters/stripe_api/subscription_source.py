"""Every subscription of a customer (or of the account) as Stripe has it now, page by page, stamped with the
second Stripe answered (its ``Date`` header): the basis of reconcile's watermark."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import stripe

from tollgate import errors
from tollgate.adapters.stripe_client import stripe_errors
from tollgate.ports.stripe import FetchedPage


def stripe_time(headers: Mapping[str, str] | None) -> int:
    """Stripe's clock from a response's ``Date`` header; without one there is no safe watermark, so refuse."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "date"), None)
    try:
        return int(email.utils.parsedate_to_datetime(value or "").timestamp())
    except (TypeError, ValueError):
        raise errors.UpstreamUnavailable("Stripe answered without a usable Date header") from None


class SdkSubscriptionSource:
    PAGE_SIZE = 100

    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def pages(self, customer_id: str | None) -> Iterator[FetchedPage]:
        params: dict[str, Any] = {"status": "all", "limit": self.PAGE_SIZE, "expand": ["data.latest_invoice"]}
        if customer_id:
            params["customer"] = customer_id
        while True:
            with stripe_errors("subscriptions.list"):
                page = self._client().v1.subscriptions.list(params)  # type: ignore[arg-type]
            response = page.last_response
            yield FetchedPage([s.to_dict() for s in page.data], stripe_time(response.headers if response else None))
            if not page.has_more or not page.data:
                return
            params = {**params, "starting_after": page.data[-1].id}
