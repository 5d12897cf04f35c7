"""Checkout function: the public plan list, Checkout sessions and the success-page status check."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.domain.catalog import PLANS_CACHE_SECONDS
from tollgate.http.identity import caller_from
from tollgate.http.models import CheckoutRequest
from tollgate.http.responses import build_resolver, json_response
from tollgate.observability import logger, metrics, tracer

app = build_resolver()
register_snapstart_hooks("checkout", "plan_catalog", "success_page")


@app.get("/plans")
def list_plans() -> Response[str]:
    return json_response(container().plan_catalog.get().public_view(), cache_seconds=PLANS_CACHE_SECONDS)


@app.post("/checkout/sessions")
def create_checkout_session(request: CheckoutRequest) -> Response[str]:
    caller = caller_from(app.current_event)
    link = container().checkout.start(
        caller.user_id, caller.email, request.plan, request.quantity, app.current_event.headers.get("idempotency-key")
    )
    return json_response({"id": link.id, "url": link.url})


@app.get("/checkout/sessions/<session_id>")
def get_checkout_session(session_id: str) -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(container().success_page.check(caller.user_id, session_id))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
