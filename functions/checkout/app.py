"""Checkout function: the public plan list, Checkout sessions and the success-page status check."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.http import build_resolver, not_implemented
from tollgate.observability import logger, metrics, tracer

app = build_resolver()


@app.get("/plans")
def list_plans() -> Response[str]:
    return not_implemented("plan catalog")


@app.post("/checkout/sessions")
def create_checkout_session() -> Response[str]:
    return not_implemented("checkout sessions")


@app.get("/checkout/sessions/<session_id>")
def get_checkout_session(session_id: str) -> Response[str]:
    return not_implemented("checkout session status")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
