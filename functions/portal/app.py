"""Portal function: Customer Portal sessions, the caller's subscription status and previewed plan changes."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container
from tollgate.http import build_resolver, caller_from, json_response
from tollgate.observability import logger, metrics, tracer
from tollgate.plan_changes import ChangeRequest, PlanChangeService, PreviewRequest
from tollgate.portal import PortalRequest, PortalService
from tollgate.subscriptions.status import BillingStatusService

app = build_resolver()


@app.post("/portal/sessions")
def create_portal_session(request: Annotated[PortalRequest | None, Body()] = None) -> Response[str]:
    caller = caller_from(app.current_event)
    url = PortalService.from_container(container()).open(
        caller, request or PortalRequest(), app.current_event.headers.get("idempotency-key")
    )
    return json_response({"url": url})


@app.get("/billing/subscription")
def get_subscription() -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(BillingStatusService.from_container(container()).for_user(caller.user_id))


@app.post("/billing/subscription/preview")
def preview_plan_change(request: PreviewRequest) -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(PlanChangeService.from_container(container()).preview(caller, request))


@app.post("/billing/subscription/change")
def apply_plan_change(request: ChangeRequest) -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(PlanChangeService.from_container(container()).apply(caller, request))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
