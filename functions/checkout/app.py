"""Checkout function: the public plan list, Checkout sessions, the success-page status check, and the API's
OpenAPI document."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.domain.catalog import PLANS_CACHE_SECONDS
from tollgate.http.contract import CheckoutSessionId, IdempotencyKey, documented
from tollgate.http.identity import caller_from
from tollgate.http.models import (
    CheckoutRequest,
    CheckoutSessionCreated,
    CheckoutSessionStatus,
    OpenApiDocument,
    PlanListResponse,
)
from tollgate.http.openapi import published_document
from tollgate.http.responses import build_resolver, model_response
from tollgate.observability import logger, metrics, tracer

app = build_resolver()
register_snapstart_hooks("checkout", "plan_catalog", "success_page")

#: The document changes only with a deploy.
OPENAPI_CACHE_SECONDS = 300


@app.get(
    "/plans",
    **documented(
        "listPlans",
        PlanListResponse,
        auth="public",
        summary="The plan catalog for a pricing page",
        description="Resolved from Stripe and cached (`Cache-Control: public, max-age=300`). `amount` is null for "
        "a pricing-plan (v2 preview) plan.",
        errors=[502],
    ),
)
def list_plans() -> Response[PlanListResponse]:
    body = PlanListResponse.model_validate(container().plan_catalog.get().public_view())
    return model_response(body, cache_seconds=PLANS_CACHE_SECONDS)


@app.post(
    "/checkout/sessions",
    **documented(
        "createCheckoutSession",
        CheckoutSessionCreated,
        auth="jwt",
        summary="Open a Stripe Checkout session for the caller",
        description="Subscription mode, for the caller's own Stripe customer; plans and quantities from the "
        "allowlisted catalog, URLs and trial from the server. Optional `Idempotency-Key` (1-128 characters of "
        "`A-Za-z0-9_-:.`); identical requests within five minutes return the same session. 409 while the user has "
        "a subscription Stripe may still collect on.",
        errors=[409, 422, 502],
    ),
)
def create_checkout_session(
    request: CheckoutRequest, idempotency_key: IdempotencyKey = None
) -> Response[CheckoutSessionCreated]:
    caller = caller_from(app.current_event)
    link = container().checkout.start(caller.user_id, caller.email, request.plan, request.quantity, idempotency_key)
    return model_response(CheckoutSessionCreated(id=link.id, url=link.url))


@app.get(
    "/checkout/sessions/<session_id>",
    **documented(
        "getCheckoutSession",
        CheckoutSessionStatus,
        auth="jwt",
        summary="The success page's check: the session and the caller's access",
        description="Re-fetches the caller's own Checkout session from Stripe and commits it like the webhook "
        "would, so the success page never waits for the webhook. Another user's session is a 404.",
        errors=[404, 502],
    ),
)
def get_checkout_session(session_id: CheckoutSessionId) -> Response[CheckoutSessionStatus]:
    caller = caller_from(app.current_event)
    body = CheckoutSessionStatus.model_validate(container().success_page.check(caller.user_id, session_id))
    return model_response(body)


@app.get(
    "/openapi.json",
    **documented(
        "getOpenApiDocument",
        OpenApiDocument,
        auth="public",
        summary="This document",
        description="Generated from the handlers of every function behind the API.",
    ),
)
def get_openapi_document() -> Response[OpenApiDocument]:
    return model_response(OpenApiDocument.model_validate(published_document()), cache_seconds=OPENAPI_CACHE_SECONDS)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
