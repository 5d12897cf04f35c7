"""Portal function: Customer Portal sessions, the caller's subscription status, previewed plan changes, cancel at
period end and resume, invoices; and the IAM service routes the app's own backends call about a user."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.http.identity import caller_from
from tollgate.http.models import (
    CancellationResponse,
    ChangeRequest,
    InvoiceListResponse,
    PortalRequest,
    PreviewRequest,
)
from tollgate.http.responses import build_resolver, json_response
from tollgate.http.service import CustomerDetailsRequest, feature_from, service_user_from
from tollgate.observability import logger, metrics, tracer

app = build_resolver()
register_snapstart_hooks("portal", "billing_status")


@app.post("/portal/sessions")
def create_portal_session(request: Annotated[PortalRequest | None, Body()] = None) -> Response[str]:
    caller = caller_from(app.current_event)
    flow = request.flow if request is not None else None
    url = container().portal.open(caller.user_id, flow, app.current_event.headers.get("idempotency-key"))
    return json_response({"url": url})


@app.get("/billing/subscription")
def get_subscription() -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(container().billing_status.for_user(caller.user_id))


@app.post("/billing/subscription/preview")
def preview_plan_change(request: PreviewRequest) -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(container().plan_changes.preview(caller.user_id, request.plan, request.quantity))


@app.post("/billing/subscription/change")
def apply_plan_change(request: ChangeRequest) -> Response[str]:
    caller = caller_from(app.current_event)
    return json_response(container().plan_changes.apply(caller.user_id, request.token))


@app.post("/billing/subscription/cancel")
def cancel_subscription() -> Response[str]:
    caller = caller_from(app.current_event)
    body = container().cancellations.cancel(caller.user_id, app.current_event.headers.get("idempotency-key"))
    return json_response(CancellationResponse.model_validate(body).model_dump(), 202)


@app.post("/billing/subscription/resume")
def resume_subscription() -> Response[str]:
    caller = caller_from(app.current_event)
    body = container().cancellations.resume(caller.user_id, app.current_event.headers.get("idempotency-key"))
    return json_response(CancellationResponse.model_validate(body).model_dump(), 202)


@app.get("/billing/invoices")
def list_invoices() -> Response[str]:
    caller = caller_from(app.current_event)
    query = app.current_event.query_string_parameters or {}
    body = container().invoices.list_for_user(caller.user_id, query.get("limit"), query.get("starting_after"))
    return json_response(InvoiceListResponse.model_validate(body).model_dump())


# ---- service routes (AWS_IAM in the template: SigV4-signed by the app's backends, never a user's JWT) ----------


@app.get("/service/users/<user_id>/billing")
def service_get_billing(user_id: str) -> Response[str]:
    return json_response(container().billing_status.for_user(service_user_from(app.current_event)))


@app.get("/service/users/<user_id>/features/<feature>")
def service_get_feature(user_id: str, feature: str) -> Response[str]:
    user = service_user_from(app.current_event)
    return json_response(container().billing_status.feature_for_user(user, feature_from(app.current_event)))


@app.put("/service/users/<user_id>/customer")
def service_update_customer(user_id: str, request: CustomerDetailsRequest) -> Response[str]:
    user = service_user_from(app.current_event)
    return json_response(container().customer_accounts.update_details(user, request.details()))


@app.delete("/service/users/<user_id>")
def service_erase_user(user_id: str) -> Response[str]:
    return json_response(container().customer_accounts.erase(service_user_from(app.current_event)))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
