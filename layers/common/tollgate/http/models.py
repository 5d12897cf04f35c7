"""Request bodies of the customer-facing routes, and below the response models of the billing routes. Strict on
purpose: the browser names a plan key, a quantity, a portal flow or a plan-change token, and nothing else (price,
customer, URLs, trial, metadata are refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PortalFlow = Literal["payment_method_update", "subscription_cancel", "subscription_update"]


class CheckoutRequest(BaseModel):
    """The whole Checkout request body. Anything else (price, customer, URLs, trial, metadata) is rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    plan: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=10_000)] = 1


class PortalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    flow: PortalFlow | None = None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    plan: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=10_000)] = 1


class ChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    token: Annotated[str, Field(min_length=10, max_length=1024)]


# ----------------------------------------------------------------------------------------------- responses
class CancellationResponse(BaseModel):
    """``POST /billing/subscription/cancel`` and ``/resume`` (202): what was asked of Stripe; the state follows by
    webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subscription_id: str
    cancel_at_period_end: bool
    current_period_end: int | None
    cancel_at: int | None
    status: str
    changed: bool


class InvoiceRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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


class InvoiceListResponse(BaseModel):
    """``GET /billing/invoices``: one page, newest first, and the cursor of the next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invoices: list[InvoiceRow]
    has_more: bool
    next_cursor: str | None
