"""Usage drift function: once a day (EventBridge Scheduler), compare the usage ledger with Stripe's meter event
summaries for the last USAGE_DRIFT_DAYS_BACK complete UTC days and report every difference (metric, log record,
domain event). It never repairs on its own: repair is an operator's decision (make usage-drift ARGS=--repair).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tollgate.bootstrap import container
from tollgate.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = container()
    report = services.usage_drift.check_recent(services.settings.usage_drift_days_back)
    return {"days": report.days, "cells": report.cells_checked, "drifts": len(report.drifts)}
