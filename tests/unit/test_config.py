"""Configuration is parsed once and fails at cold start with a message naming the problem."""

from __future__ import annotations

import json

import pytest

from tollgate.config import Settings
from tollgate.errors import ConfigurationError

BASE = {"TABLE_NAME": "billing", "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:s"}
CATALOG = {"plans": [{"key": "starter", "name": "Starter", "price_lookup_key": "starter_monthly", "trial_days": 14}]}


def test_valid_environment_parses_into_typed_settings() -> None:
    # Given a complete environment
    env = {**BASE, "PLAN_CATALOG": json.dumps(CATALOG), "STRIPE_TIMEOUT_SECONDS": "4"}
    # When it is parsed
    settings = Settings.from_environment(env)
    # Then values are typed and the catalog is resolved into plans
    assert settings.stripe_timeout_seconds == 4.0
    assert settings.plan_catalog is not None
    assert settings.plan_catalog.get("starter") is not None


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"TABLE_NAME": ""}, "TABLE_NAME"),
        ({"PLAN_CATALOG": "{not json"}, "PLAN_CATALOG"),
        ({"PLAN_CATALOG": json.dumps({"plans": [{"key": "x", "name": "X"}]})}, "PLAN_CATALOG"),
        ({"WEBHOOK_TOLERANCE_SECONDS": "0"}, "WEBHOOK_TOLERANCE_SECONDS"),
        ({"STRIPE_TIMEOUT_SECONDS": "80"}, "STRIPE_TIMEOUT_SECONDS"),
        ({"CHECKOUT_SUCCESS_URL": "https://app.example.com/ok"}, "CHECKOUT_SUCCESS_URL"),
    ],
)
def test_bad_environment_fails_loudly_naming_the_variable(override: dict[str, str], named: str) -> None:
    # Given an environment with one bad value
    env = {**BASE, **override}
    # When it is parsed, Then the error names the variable
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environment(env)


def test_plan_needs_exactly_one_stripe_reference() -> None:
    catalog = {"plans": [{"key": "a", "name": "A", "price_lookup_key": "a", "price_id": "price_1"}]}
    with pytest.raises(ConfigurationError, match="exactly one"):
        Settings.from_environment({**BASE, "PLAN_CATALOG": json.dumps(catalog)})
