"""The signed-in user's invoices (``GET /billing/invoices``), from Stripe, for their own customer only.

The customer comes from the caller's mapping, never from the request. A cursor (``starting_after``) is an invoice
id the client sends back: it is retrieved first and must be the caller's customer's, so another customer's id is
refused (404, like an id that does not exist) before anything is listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollgate import errors
from tollgate.domain.customers import NO_BILLING_ACCOUNT
from tollgate.domain.invoices import customer_page, page_request
from tollgate.observability import logger
from tollgate.ports.storage import CustomerLookup, RateLimiter
from tollgate.ports.stripe import InvoiceGateway


@dataclass(frozen=True)
class InvoiceService:
    directory: CustomerLookup
    gateway: InvoiceGateway
    rate_limiter: RateLimiter

    def list_for_user(self, user_id: str, limit: str | None, starting_after: str | None) -> dict[str, Any]:
        size, cursor = page_request(limit, starting_after)
        self.rate_limiter.admit(user_id)
        customer_id = self.directory.customer_for_user(user_id)
        if customer_id is None:
            raise errors.NotFound(NO_BILLING_ACCOUNT)
        if cursor is not None:
            try:
                owner = self.gateway.invoice_customer(cursor)
            except errors.UpstreamNotFound:
                owner = None
            if owner != customer_id:
                logger.warning("invoice cursor refused", reason="not the caller's invoice")
                raise errors.NotFound("no such invoice")
        listed, has_more = self.gateway.list_invoices(customer_id, size, cursor)
        return customer_page(listed, has_more, customer_id).body()
