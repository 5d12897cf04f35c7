"""Webhook function: verifies, deduplicates and applies Stripe events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.http import build_resolver, not_implemented
from tollgate.observability import logger, metrics, tracer

app = build_resolver()


@app.post("/webhooks/stripe")
def receive_stripe_event() -> Response[str]:
    return not_implemented("webhook processing")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
