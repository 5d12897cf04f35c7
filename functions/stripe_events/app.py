"""Stripe events function: Stripe's EventBridge deliveries (partner bus -> rule -> SQS) through the webhook's own
processing, after the partner-source check that replaces the signature. Partial batch responses: only the
records that failed retryably come back."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.observability import logger, metrics, tracer
from tollgate.services.stripe_event_bridge import BridgedMessage

register_snapstart_hooks("stripe_event_bridge")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    messages = [BridgedMessage(str(r["messageId"]), str(r.get("body") or "")) for r in event.get("Records", [])]
    outcomes = container().stripe_event_bridge.receive(messages, context.get_remaining_time_in_millis())
    return {"batchItemFailures": [{"itemIdentifier": o.message_id} for o in outcomes if o.retry]}
