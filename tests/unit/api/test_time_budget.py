"""Every Stripe call's timeout and retries fit inside the function's timeout, which fits inside API Gateway's 30 s.

Computed from the deployed configuration (template.yaml's environment parsed by the real Settings), not restated.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.template import load_template
from tollgate.config import Settings
from tollgate.services.checkout import request_budget_seconds, stripe_call_budget_seconds
from tollgate.services.customers import CreationWait

API_GATEWAY_LIMIT_SECONDS = 30
#: Left for DynamoDB, the response and the runtime after the last Stripe byte.
MARGIN_SECONDS = 2


def deployed_settings(function: str) -> tuple[Settings, float]:
    template = load_template()
    globals_env: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    props = template["Resources"][function]["Properties"]
    env = {**globals_env, **props["Environment"]["Variables"]}
    literal = {k: v for k, v in env.items() if isinstance(v, str)}
    literal.update(TABLE_NAME="billing", STRIPE_SECRET_ARN="arn:aws:secretsmanager:us-east-1:1:secret:s")
    timeout = float(props.get("Timeout", template["Globals"]["Function"].get("Timeout", 3)))
    return Settings.from_environment(literal), timeout


@pytest.mark.parametrize("function", ["CheckoutFunction", "PortalFunction"])
def test_the_slowest_request_path_fits_the_function_timeout(function: str) -> None:
    settings, function_timeout = deployed_settings(function)
    worst = request_budget_seconds(settings, CreationWait().total_seconds)
    assert worst <= function_timeout - MARGIN_SECONDS
    assert function_timeout < API_GATEWAY_LIMIT_SECONDS


def test_control_the_sdk_defaults_would_not_fit() -> None:
    # Control: stripe-python's defaults (80 s, 2 retries) and even the project-wide defaults (5 s, 2 retries) fail
    sdk_defaults = Settings(table_name="billing", stripe_secret_arn="arn", stripe_timeout_seconds=20)
    project_defaults = Settings(table_name="billing", stripe_secret_arn="arn")
    for settings in (sdk_defaults, project_defaults):
        assert request_budget_seconds(settings, CreationWait().total_seconds) > 15 - MARGIN_SECONDS


def test_the_budget_follows_stripe_pythons_backoff() -> None:
    settings = Settings(
        table_name="billing", stripe_secret_arn="arn", stripe_timeout_seconds=2, stripe_max_network_retries=3
    )
    # 4 attempts x 2 s + sleeps of 0.5, 1 and 2 s
    assert stripe_call_budget_seconds(settings) == 8 + 0.5 + 1 + 2
