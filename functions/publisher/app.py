"""Publisher function: domain events from the billing table's stream to the event bus.

Fed by a DynamoDB Streams event source mapping (partial batch responses, bisect on error, bounded retries, an
on-failure destination); every applied state write and every recorded announcement is one stream record.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.observability import logger, metrics, tracer

register_snapstart_hooks("domain_event_relay")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    retry = container().domain_event_relay.relay(event.get("Records", []))
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in retry]}
