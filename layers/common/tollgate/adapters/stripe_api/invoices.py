"""The Stripe calls of the invoices list: one page for a customer, and an invoice's customer (cursor check)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import stripe

from tollgate.adapters.stripe_client import stripe_errors


class StripeInvoiceGateway:
    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        # A factory: the composition root rebuilds the client when the API key rotates.
        self._client = client

    def list_invoices(
        self, customer_id: str, limit: int, starting_after: str | None
    ) -> tuple[list[Mapping[str, Any]], bool]:
        params: dict[str, Any] = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        with stripe_errors("invoices.list"):
            page = self._client().v1.invoices.list(params=cast(Any, params))
        return [cast(Mapping[str, Any], i.to_dict()) for i in page.data], bool(page.has_more)

    def invoice_customer(self, invoice_id: str) -> str | None:
        with stripe_errors("invoices.retrieve"):
            invoice = self._client().v1.invoices.retrieve(invoice_id)
        customer = invoice.customer
        if customer is None:
            return None
        return customer if isinstance(customer, str) else customer.id
