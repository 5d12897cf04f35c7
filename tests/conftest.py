"""Root fixtures: fake AWS credentials and a Lambda-like environment, set once for every test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.support.api_world"]

# Set before anything imports boto3: no test may ever reach real AWS.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "tollgate",
        "POWERTOOLS_METRICS_NAMESPACE": "Tollgate",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "TABLE_NAME": "tollgate-test",
        "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tollgate/stripe",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process moto for every AWS service the product uses."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def billing_table(aws: None) -> str:
    """The product's DynamoDB table, created from template.yaml's own definition."""
    import boto3

    from tests.support.template import table_definition, ttl_attribute

    client = boto3.client("dynamodb")
    name = os.environ["TABLE_NAME"]
    client.create_table(TableName=name, **table_definition())
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute()}
    )
    return name


@pytest.fixture
def fresh_container() -> Iterator[Any]:
    """A new composition root per test, so cached settings and clients never leak between tests."""
    from tollgate import bootstrap
    from tollgate.config import get_settings

    get_settings.cache_clear()
    bootstrap.reset_container(None)
    yield bootstrap.container()
    get_settings.cache_clear()
    bootstrap.reset_container(None)


@pytest.fixture(autouse=True)
def _stripe_parameters_as_the_sdk_types_them(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test during which a Stripe emulator refused a request's parameters as the pinned SDK types them
    (unknown, wrong type, missing): the product must never send Stripe what Stripe refuses. Tests that plant one
    on purpose say so with ``@pytest.mark.plants_invalid_parameters``."""
    checks = sys.modules.get("devstack.stripe_emulator.sdk_params")
    before = len(checks.VIOLATIONS) if checks is not None else 0
    yield
    checks = sys.modules.get("devstack.stripe_emulator.sdk_params")
    if checks is None or request.node.get_closest_marker("plants_invalid_parameters"):
        return
    refused = checks.VIOLATIONS[before:]
    if refused:
        pytest.fail(f"the Stripe emulator refused parameters the SDK does not type: {refused}", pytrace=False)
