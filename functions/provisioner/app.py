"""Provisioner function: the Stripe side of the stack, as a CloudFormation custom resource (``crhelper``).

Create and update apply the description in the resource's properties; delete archives what the stack owns. The
plan's summary goes back to CloudFormation in the response's ``Reason`` and ``Data`` (stack events, ``!GetAtt``);
a refused request fails the deployment with Stripe's message.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from crhelper import CfnResource

from tollgate.bootstrap import container
from tollgate.observability import logger, metrics, tracer
from tollgate.services.provisioning import DEFAULT_KEY_WAIT_SECONDS, ProvisioningReport

#: Time kept for the apply itself after waiting for the API key (the function's timeout is 900 s).
APPLY_BUDGET_SECONDS = 240.0


@cache
def custom_resource() -> CfnResource:
    """Built on first use (crhelper creates AWS clients in its constructor; nothing is built at import time).
    No sleep on delete: the function's log group outlives the custom resource, which depends on the function."""
    resource = CfnResource(json_logging=False, log_level="INFO", boto_level="ERROR", sleep_on_delete=0)
    resource.create(deploy)
    resource.update(deploy)
    resource.delete(remove)
    return resource


def deploy(event: dict[str, Any], context: LambdaContext) -> str:
    properties = event["ResourceProperties"]
    budget = context.get_remaining_time_in_millis() / 1000 - APPLY_BUDGET_SECONDS
    wait = min(float(properties.get("ApiKeyWaitSeconds") or DEFAULT_KEY_WAIT_SECONDS), max(0.0, budget))
    return answer(container().stack_provisioning.deploy(properties, key_wait_seconds=wait))


def remove(event: dict[str, Any], context: LambdaContext) -> str:
    answer(container().stack_provisioning.remove(event["ResourceProperties"]))
    return str(event.get("PhysicalResourceId") or "")


def answer(report: ProvisioningReport) -> str:
    """The plan into the response (Reason and Data); the physical id stays the same for the stack's life."""
    resource = custom_resource()
    resource.Reason = report.summary[:240]
    resource.Data.update(report.data())
    logger.info("custom resource answered", summary=report.summary, changes=len(report.changes))
    return f"stripe-{report.owner}"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    custom_resource()(event, context)
