"""Usage function: reports usage records from the usage queue to Stripe as meter events, exactly once.

The reporter decides every record of the batch in one pass (so Stripe gets up to 100 events per request); the
Powertools batch processor then turns the records it must see again into a partial batch response.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container, register_snapstart_hooks
from tollgate.observability import logger, metrics, tracer
from tollgate.services.usage_reporter import InboundRecord

processor = BatchProcessor(event_type=EventType.SQS)
register_snapstart_hooks("usage_reporter")


class UsageNotRecordedYet(Exception):
    """The record hit a temporary failure (429, 5xx, timeout, storage): SQS delivers it again."""


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = container().usage_reporter.report([InboundRecord.from_sqs(r) for r in event.get("Records", [])])

    def record_handler(record: SQSRecord) -> None:
        outcome = outcomes[record.message_id]
        if outcome.retry:
            raise UsageNotRecordedYet(outcome.reason or "retry")

    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
