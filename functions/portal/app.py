"""Portal function: Customer Portal sessions, the caller's subscription status, previewed plan changes, cancel at
period end and resume, invoices; and the IAM service routes the app's own backends call about a user."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.http.contract import FeatureKey, IdempotencyKey, UserId, documented
from tollgate.http.identity import caller_from
from tollgate.http.models import (
    BillingSubscription,
    CancellationResponse,
    ChangeRequest,
    CustomerDetailsUpdated,
    FeatureCheck,
    InvoiceListResponse,
    PlanChangeApplied,
    PlanChangePreview,
    PortalRequest,
    PortalSessionCreated,
    PreviewRequest,
    UserErased,
)
from tollgate.http.responses import build_resolver, model_response
from tollgate.http.service import CustomerDetailsRequest, feature_from, service_user_from
from tollgate.observability import logger, metrics, tracer

app = build_resolver()
register_snapstart_hooks("portal", "billing_status")

_CANCELLATION = (
    "No body. For the caller's own current subscription; the subscription is read live from Stripe first and "
    "`changed` is false when Stripe already had the asked state. The projection follows by webhook. "
    "`Idempotency-Key` as for checkout (without one, repeats within 60 s share the first one's key). 404 without "
    "a billing account; 409 when the subscription has ended or is a pricing-plan subscription."
)


@app.post(
    "/portal/sessions",
    **documented(
        "createPortalSession",
        PortalSessionCreated,
        auth="jwt",
        summary="Open a Stripe Customer Portal session for the caller",
        description='Optional body `{"flow": ...}`; the customer comes only from the caller\'s mapping (404 '
        "without one), the return URL from configuration. The subscription flows need a current subscription "
        "(409 without one).",
        errors=[404, 409, 422, 502],
    ),
)
def create_portal_session(
    request: Annotated[PortalRequest | None, Body()] = None, idempotency_key: IdempotencyKey = None
) -> Response[PortalSessionCreated]:
    caller = caller_from(app.current_event)
    flow = request.flow if request is not None else None
    url = container().portal.open(caller.user_id, flow, idempotency_key)
    return model_response(PortalSessionCreated(url=url))


@app.get(
    "/billing/subscription",
    **documented(
        "getSubscription",
        BillingSubscription,
        auth="jwt",
        summary="The caller's subscription and access decision",
        description="From the projection, no Stripe call. A user without a subscription gets `status: none`.",
    ),
)
def get_subscription() -> Response[BillingSubscription]:
    caller = caller_from(app.current_event)
    return model_response(BillingSubscription.model_validate(container().billing_status.for_user(caller.user_id)))


@app.post(
    "/billing/subscription/preview",
    **documented(
        "previewPlanChange",
        PlanChangePreview,
        auth="jwt",
        summary="Preview a plan change: the proration charged now, and a token that applies exactly it",
        description="Only the caller's own subscription, only to plans priced by a Stripe price, only while it "
        "grants access. 400 for the plan already current.",
        errors=[404, 409, 422, 502],
    ),
)
def preview_plan_change(request: PreviewRequest) -> Response[PlanChangePreview]:
    caller = caller_from(app.current_event)
    body = container().plan_changes.preview(caller.user_id, request.plan, request.quantity)
    return model_response(PlanChangePreview.model_validate(body))


@app.post(
    "/billing/subscription/change",
    **documented(
        "applyPlanChange",
        PlanChangeApplied,
        auth="jwt",
        summary="Apply a previewed plan change",
        description="The token works once, for ten minutes, for the user it was issued to (403 otherwise); 409 "
        "after it was used or when the subscription changed since the preview. After a 503 the same token may be "
        "retried.",
        errors=[404, 409, 422, 502],
    ),
)
def apply_plan_change(request: ChangeRequest) -> Response[PlanChangeApplied]:
    caller = caller_from(app.current_event)
    return model_response(
        PlanChangeApplied.model_validate(container().plan_changes.apply(caller.user_id, request.token))
    )


@app.post(
    "/billing/subscription/cancel",
    **documented(
        "cancelSubscription",
        CancellationResponse,
        auth="jwt",
        status=202,
        success_description="Accepted: asked of Stripe; the state follows by webhook",
        summary="Cancel the caller's subscription at the end of the period",
        description=_CANCELLATION,
        errors=[404, 409, 502],
    ),
)
def cancel_subscription(idempotency_key: IdempotencyKey = None) -> Response[CancellationResponse]:
    caller = caller_from(app.current_event)
    body = container().cancellations.cancel(caller.user_id, idempotency_key)
    return model_response(CancellationResponse.model_validate(body), 202)


@app.post(
    "/billing/subscription/resume",
    **documented(
        "resumeSubscription",
        CancellationResponse,
        auth="jwt",
        status=202,
        success_description="Accepted: asked of Stripe; the state follows by webhook",
        summary="Take back a scheduled cancellation",
        description=_CANCELLATION,
        errors=[404, 409, 502],
    ),
)
def resume_subscription(idempotency_key: IdempotencyKey = None) -> Response[CancellationResponse]:
    caller = caller_from(app.current_event)
    body = container().cancellations.resume(caller.user_id, idempotency_key)
    return model_response(CancellationResponse.model_validate(body), 202)


@app.get(
    "/billing/invoices",
    **documented(
        "listInvoices",
        InvoiceListResponse,
        auth="jwt",
        summary="The caller's invoices, newest first",
        description="From Stripe, for the caller's customer only (404 without a billing account). Drafts are left out.",
        errors=[404, 422, 502],
    ),
)
def list_invoices(
    limit: Annotated[str | None, Query(description="1-100, default 10 (anything else is a 400)")] = None,
    starting_after: Annotated[
        str | None, Query(description="The previous page's `next_cursor`; another customer's invoice is a 404")
    ] = None,
) -> Response[InvoiceListResponse]:
    caller = caller_from(app.current_event)
    body = container().invoices.list_for_user(caller.user_id, limit, starting_after)
    return model_response(InvoiceListResponse.model_validate(body))


# ---- service routes (AWS_IAM in the template: SigV4-signed by the app's backends, never a user's JWT) ----------


@app.get(
    "/service/users/<user_id>/billing",
    **documented(
        "serviceGetBilling",
        BillingSubscription,
        auth="iam",
        summary="A user's subscription and access decision, for the app's backends",
        description="The same body the user gets from GET /billing/subscription (docs/service-api.md).",
        tags=["service"],
    ),
)
def service_get_billing(user_id: UserId) -> Response[BillingSubscription]:
    body = container().billing_status.for_user(service_user_from(app.current_event))
    return model_response(BillingSubscription.model_validate(body))


@app.get(
    "/service/users/<user_id>/features/<feature>",
    **documented(
        "serviceGetFeature",
        FeatureCheck,
        auth="iam",
        summary="Whether a user may use a feature now",
        description="On only while access is allowed and the customer's Stripe entitlements include it.",
        tags=["service"],
    ),
)
def service_get_feature(user_id: UserId, feature: FeatureKey) -> Response[FeatureCheck]:
    user = service_user_from(app.current_event)
    body = container().billing_status.feature_for_user(user, feature_from(app.current_event))
    return model_response(FeatureCheck.model_validate(body))


@app.put(
    "/service/users/<user_id>/customer",
    **documented(
        "serviceUpdateCustomer",
        CustomerDetailsUpdated,
        auth="iam",
        summary="Set the email and/or name Stripe holds for the user",
        description="Sends only what differs; 404 when the user has no Stripe customer yet.",
        errors=[404, 422, 502],
        tags=["service"],
    ),
)
def service_update_customer(user_id: UserId, request: CustomerDetailsRequest) -> Response[CustomerDetailsUpdated]:
    user = service_user_from(app.current_event)
    body = container().customer_accounts.update_details(user, request.details())
    return model_response(CustomerDetailsUpdated.model_validate(body))


@app.delete(
    "/service/users/<user_id>",
    **documented(
        "serviceEraseUser",
        UserErased,
        auth="iam",
        summary="Erase the user: delete their Stripe customer and forget them",
        description="409 while a subscription Stripe may still collect on exists; a repeat is a harmless 200.",
        errors=[409, 502],
        tags=["service"],
    ),
)
def service_erase_user(user_id: UserId) -> Response[UserErased]:
    return model_response(
        UserErased.model_validate(container().customer_accounts.erase(service_user_from(app.current_event)))
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
