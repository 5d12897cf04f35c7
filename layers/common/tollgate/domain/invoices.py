"""The caller's invoices for a billing page: what a row shows, and one page of them with its cursor."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tollgate import errors

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_INVOICE_ID = re.compile(r"^in_[A-Za-z0-9_]{1,250}$")


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: str
    number: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    created: int
    period_start: int | None
    period_end: int | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    subscription_id: str | None


@dataclass(frozen=True, slots=True)
class InvoicePage:
    invoices: list[InvoiceView]
    has_more: bool
    #: The cursor of the next page (Stripe's last invoice id of this page), None at the end.
    next_cursor: str | None

    def body(self) -> dict[str, Any]:
        return {
            "invoices": [asdict(i) for i in self.invoices],
            "has_more": self.has_more,
            "next_cursor": self.next_cursor,
        }


def page_request(limit: str | None, starting_after: str | None) -> tuple[int, str | None]:
    """The query's limit and cursor, validated (a cursor is an invoice id; whose it is, the service checks)."""
    try:
        size = DEFAULT_LIMIT if limit in (None, "") else int(limit)
    except ValueError:
        raise errors.InvalidRequest("limit must be an integer") from None
    if not 1 <= size <= MAX_LIMIT:
        raise errors.InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    if starting_after in (None, ""):
        return size, None
    if not _INVOICE_ID.fullmatch(starting_after):
        raise errors.InvalidRequest("starting_after must be an invoice id")
    return size, starting_after


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _subscription_of(invoice: Mapping[str, Any]) -> str | None:
    # API 2026-10-28: the subscription is under parent.subscription_details.
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {} if isinstance(parent, Mapping) else {}
    sub = details.get("subscription") if isinstance(details, Mapping) else None
    if isinstance(sub, Mapping):
        sub = sub.get("id")
    return sub if isinstance(sub, str) else None


def invoice_view(invoice: Mapping[str, Any]) -> InvoiceView:
    def opt_int(key: str) -> int | None:
        value = invoice.get(key)
        return int(value) if isinstance(value, int | float) else None

    def opt_str(key: str) -> str | None:
        value = invoice.get(key)
        return value if isinstance(value, str) and value else None

    return InvoiceView(
        id=str(invoice["id"]),
        number=opt_str("number"),
        status=opt_str("status"),
        currency=str(invoice.get("currency") or ""),
        amount_due=_int(invoice.get("amount_due")),
        amount_paid=_int(invoice.get("amount_paid")),
        amount_remaining=_int(invoice.get("amount_remaining")),
        total=_int(invoice.get("total")),
        created=_int(invoice.get("created")),
        period_start=opt_int("period_start"),
        period_end=opt_int("period_end"),
        hosted_invoice_url=opt_str("hosted_invoice_url"),
        invoice_pdf=opt_str("invoice_pdf"),
        subscription_id=_subscription_of(invoice),
    )


def customer_page(listed: list[Mapping[str, Any]], has_more: bool, customer_id: str) -> InvoicePage:
    """One page as the caller may see it: only their customer's invoices (a Stripe answer naming another customer
    is dropped, whatever asked for it), drafts left out (no number, no URL yet); the cursor stays Stripe's."""
    shown = [invoice_view(i) for i in listed if i.get("customer") == customer_id and i.get("status") != "draft"]
    cursor = str(listed[-1]["id"]) if has_more and listed else None
    return InvoicePage(shown, has_more, cursor)
