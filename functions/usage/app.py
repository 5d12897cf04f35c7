"""Usage function: reports usage records from the usage queue to Stripe as meter events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Until the reporter lands, fail every record so SQS keeps them (nothing is dropped unbilled).
    records = event.get("Records", [])
    logger.warning("usage reporter not implemented; returning every record for retry", records=len(records))
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
