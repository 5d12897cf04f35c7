"""Request bodies of the customer-facing routes. Strict on purpose: the browser names a plan key, a quantity, a
portal flow or a plan-change token, and nothing else (price, customer, URLs, trial, metadata are refused)."""

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
