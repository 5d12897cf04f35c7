"""Webhook function: verifies, deduplicates and applies Stripe events (snapshot and thin, one URL)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.http.responses import build_resolver, json_response
from tollgate.http.webhook_request import header, raw_body
from tollgate.observability import logger, metrics, tracer
from tollgate.services.webhook import WebhookDelivery

app = build_resolver()
register_snapstart_hooks("webhook")


@app.post("/webhooks/stripe")
def receive_stripe_event() -> Response[str]:
    event = app.current_event.raw_event
    delivery = WebhookDelivery(
        body=raw_body(event),
        signature=header(event, "stripe-signature"),
        remaining_ms=app.lambda_context.get_remaining_time_in_millis(),
    )
    outcome = container().webhook.receive(delivery)
    return json_response({"received": True, "result": outcome.result})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
