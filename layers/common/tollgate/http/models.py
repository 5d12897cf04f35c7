"""Request bodies of the customer-facing routes, and below the response models of every route. Strict on
purpose: the browser names a plan key, a quantity, a portal flow or a plan-change token, and nothing else (price,
customer, URLs, trial, metadata are refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue


def _integral_number(value: object) -> object:
    """JSON has one number type: ``3.0`` is the integer 3 to JSON Schema (and to the published document), so it is
    accepted; ``3.5``, ``"3"`` and ``true`` still are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Quantity = Annotated[int, Field(ge=1, le=10_000), BeforeValidator(_integral_number)]

# Every model here is built on first use (``defer_build``): a function validates a few of them, and building all
# of them at import costs every cold start (bench/first_request_bench.py).

PortalFlow = Literal["payment_method_update", "subscription_cancel", "subscription_update"]


class CheckoutRequest(BaseModel):
    """The whole Checkout request body. Anything else (price, customer, URLs, trial, metadata) is rejected."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, strict=True)

    plan: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Quantity = 1


class PortalRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, strict=True)

    flow: PortalFlow | None = None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, strict=True)

    plan: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Quantity = 1


class ChangeRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, strict=True)

    token: Annotated[str, Field(min_length=10, max_length=1024)]


# ----------------------------------------------------------------------------------------------- responses
class CancellationResponse(BaseModel):
    """``POST /billing/subscription/cancel`` and ``/resume`` (202): what was asked of Stripe; the state follows by
    webhook."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    subscription_id: str
    cancel_at_period_end: bool
    current_period_end: int | None
    cancel_at: int | None
    status: str
    changed: bool


class InvoiceRow(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

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

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    invoices: list[InvoiceRow]
    has_more: bool
    next_cursor: str | None


# ------------------------------------------------------------------------- responses of the other routes
# Every response model forbids extra keys: a handler that answers more than the contract says fails its own
# response validation (a 500 in tests) instead of leaking a field the OpenAPI document does not describe.
Timestamp = Annotated[int, Field(description="Unix time, seconds")]
Amount = Annotated[int, Field(description="In the currency's smallest unit (cents for usd)")]
SubscriptionStatusValue = Literal[
    "none", "trialing", "active", "incomplete", "incomplete_expired", "past_due", "unpaid", "canceled", "paused"
]


class PlanView(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    plan: str = Field(description="The plan key to send to POST /checkout/sessions")
    name: str
    amount: Amount | None = Field(description="Per unit and interval; null for a pricing-plan (v2 preview) plan")
    currency: str
    interval: str | None
    interval_count: int
    trial_days: int = Field(description="Days of trial a first subscription gets (the server decides who is eligible)")
    min_quantity: int
    max_quantity: int


class PlanListResponse(BaseModel):
    """``GET /plans``: the catalog as a pricing page needs it."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "plans": [
                        {
                            "plan": "starter",
                            "name": "Starter",
                            "amount": 900,
                            "currency": "usd",
                            "interval": "month",
                            "interval_count": 1,
                            "trial_days": 14,
                            "min_quantity": 1,
                            "max_quantity": 1,
                        }
                    ]
                }
            ]
        },
    )

    plans: list[PlanView]


class CheckoutSessionCreated(BaseModel):
    """``POST /checkout/sessions``: send the browser to ``url``."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"id": "cs_test_a1B2c3", "url": "https://checkout.stripe.com/c/pay/cs_test_a1B2c3"}]
        },
    )

    id: str
    url: str


class Access(BaseModel):
    """The access decision the product enforces (tollgate.domain.access)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    allowed: bool
    reason: str = Field(
        description="Why: no_subscription, subscription_deleted, active, trialing, cancel_at_period_end, "
        "canceled_period_ended, past_due_retrying, past_due_grace, past_due_grace_expired, past_due, unpaid, "
        "incomplete, incomplete_allowed, collection_paused, servicing_<state>, ..."
    )
    until: Timestamp | None = Field(description="When access ends, when the decision has an end")


_SUBSCRIPTION_EXAMPLE: dict[str, JsonValue] = {
    "status": "active",
    "plan": "starter",
    "price_id": "price_1Starter",
    "quantity": 1,
    "subscription_id": "sub_1Abc",
    "current_period_end": 1792592000,
    "cancel_at_period_end": False,
    "cancel_at": None,
    "trial_end": None,
    "latest_invoice_status": "paid",
    "access": {"allowed": True, "reason": "active", "until": None},
    "features": ["api_access"],
}


class BillingSubscription(BaseModel):
    """The caller's current subscription and access decision. A user without one gets ``status: none`` (the
    subscription fields null), never a 404."""

    model_config = ConfigDict(
        defer_build=True, extra="forbid", frozen=True, json_schema_extra={"examples": [_SUBSCRIPTION_EXAMPLE]}
    )

    status: SubscriptionStatusValue
    plan: str | None
    price_id: str | None = None
    quantity: int | None = None
    subscription_id: str | None = None
    current_period_end: Timestamp | None = None
    cancel_at_period_end: bool | None = None
    cancel_at: Timestamp | None = None
    trial_end: Timestamp | None = None
    latest_invoice_status: str | None = None
    access: Access
    features: list[str] = Field(description="The customer's Stripe Entitlements lookup keys")


class CheckoutSessionStatus(BillingSubscription):
    """``GET /checkout/sessions/{id}``: the success page's check; the subscription fields as in
    ``GET /billing/subscription``, committed from Stripe if the webhook has not arrived yet."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "session_id": "cs_test_a1B2c3",
                    "session_status": "complete",
                    "payment_status": "paid",
                    **_SUBSCRIPTION_EXAMPLE,
                }
            ]
        },
    )

    session_id: str
    session_status: str | None = Field(description="Stripe's: open, complete or expired")
    payment_status: str | None = Field(description="Stripe's: paid, unpaid or no_payment_required")


class PortalSessionCreated(BaseModel):
    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"url": "https://billing.stripe.com/p/session/test_YWNjdF8x"}]},
    )

    url: str


class NextInvoice(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    date: Timestamp | None = Field(description="The end of the current period")
    amount: Amount = Field(description="The new plan's recurring amount, before tax and discounts")


class PlanChangePreview(BaseModel):
    """``POST /billing/subscription/preview``: the proration, and the token that applies exactly it."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "token": "eyJ0Ijoi...",
                    "expires_at": 1790000600,
                    "plan": "team",
                    "quantity": 3,
                    "amount_due_now": 7140,
                    "currency": "usd",
                    "proration_date": 1790000000,
                    "next_invoice": {"date": 1792592000, "amount": 8700},
                }
            ]
        },
    )

    token: str = Field(description="Signed, single use, for this user only, valid ten minutes")
    expires_at: Timestamp
    plan: str
    quantity: int
    amount_due_now: Amount
    currency: str
    proration_date: Timestamp
    next_invoice: NextInvoice


class PlanChangeApplied(BaseModel):
    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"plan": "team", "quantity": 3, "amount_due_now": 7140, "currency": "usd"}]},
    )

    plan: str
    quantity: int
    amount_due_now: Amount
    currency: str


class FeatureCheck(BaseModel):
    """``GET /service/users/{user_id}/features/{feature}``."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-123",
                    "feature": "api_access",
                    "enabled": True,
                    "access": {"allowed": True, "reason": "active", "until": None},
                }
            ]
        },
    )

    user_id: str
    feature: str
    enabled: bool
    access: Access


class CustomerDetailsUpdated(BaseModel):
    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"user_id": "u-123", "updated": ["email"]}]},
    )

    user_id: str
    updated: list[str] = Field(description="The fields sent to Stripe (those that differed), sorted")


class UserErased(BaseModel):
    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"user_id": "u-123", "erased": True, "stripe_customer_deleted": True}]},
    )

    user_id: str
    erased: bool
    stripe_customer_deleted: bool


class OpenApiDocument(BaseModel):
    """``GET /openapi.json``: this document (OpenAPI 3.1)."""

    model_config = ConfigDict(defer_build=True, extra="allow", frozen=True)

    openapi: str
    info: dict[str, object]
    paths: dict[str, object]
    components: dict[str, object]


# ----------------------------------------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    status: int = Field(description="The HTTP status, repeated")
    reason: str = Field(description="A short reason for a person; never echoes the request's values")


class ErrorResponse(BaseModel):
    """The one shape of every failure the product's functions answer."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"error": {"status": 409, "reason": "you already have a subscription"}}]},
    )

    error: ErrorDetail


class GatewayErrorResponse(BaseModel):
    """What API Gateway itself answers before (or instead of) the function: an HTTP API cannot customize these
    bodies (gateway responses exist only for REST APIs), so they are documented as they are."""

    model_config = ConfigDict(
        defer_build=True, extra="forbid", frozen=True, json_schema_extra={"examples": [{"message": "Unauthorized"}]}
    )

    message: str = Field(
        description="Unauthorized, Forbidden, Not Found, Too Many Requests, Request Entity Too Large, "
        "Internal Server Error or Service Unavailable (an IAM signature failure explains itself)"
    )
