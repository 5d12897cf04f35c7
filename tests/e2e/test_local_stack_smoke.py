"""Smoke tests of the local stack: requests travel curl -> HTTP API emulator -> authorizer -> function worker."""

from __future__ import annotations

import json

import pytest
import requests

from devstack.stack import LocalStack
from devstack.stripe_emulator.webhook_delivery import DeliveryFreedoms
from devstack.template import load_template
from tollgate.services.webhook_handlers import SNAPSHOT_HANDLERS

pytestmark = pytest.mark.e2e

GATEWAY_ERRORS = ({"message": "Not Found"}, {"message": "Unauthorized"}, {"message": "Internal Server Error"})


def test_the_journeys_run_with_stripe_like_delivery(local_stack: LocalStack) -> None:
    # Every e2e journey meets the races: events out of order, some twice, the redirect not waiting for them
    assert local_stack.config.delivery == "stripe"
    assert local_stack.emulator.events.sender.freedoms == DeliveryFreedoms.like_stripe()
    assert local_stack.emulator._pipeline.checkout_wait_seconds == 0


def test_get_plans_reaches_the_checkout_function(local_stack: LocalStack) -> None:
    # Given the running stack and the checkout function's invocation count
    pool = local_stack.functions.pools["CheckoutFunction"]  # type: ignore[union-attr]
    before = pool.invocations
    # When an anonymous client lists the plans
    response = requests.get(f"{local_stack.api_url}/plans", timeout=60)
    # Then the checkout function answered with the template's catalog
    assert pool.invocations == before + 1
    assert response.json() not in GATEWAY_ERRORS
    assert response.status_code == 200, response.text
    catalog = json.loads(load_template()["Parameters"]["PlanCatalog"]["Default"])
    assert [p["plan"] for p in response.json()["plans"]] == [p["key"] for p in catalog["plans"]]


def test_protected_routes_need_a_token_from_the_local_issuer(local_stack: LocalStack) -> None:
    pool = local_stack.functions.pools["PortalFunction"]  # type: ignore[union-attr]
    before = pool.invocations
    # Without a token the gateway refuses; the function never runs
    anonymous = requests.get(f"{local_stack.api_url}/billing/subscription", timeout=30)
    assert anonymous.status_code == 401
    assert pool.invocations == before
    # With the dev user's Cognito token, or a token minted for any user id, the portal function runs
    for token in (local_stack.dev_token(), local_stack.token_for("user-e2e-1", "e2e@example.com")):
        response = requests.get(
            f"{local_stack.api_url}/billing/subscription", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert response.json() not in GATEWAY_ERRORS
    assert pool.invocations == before + 2


def test_the_stack_is_provisioned_by_its_custom_resource_and_the_secret_holds_the_signing_secrets(
    local_stack: LocalStack,
) -> None:
    # Given the stack's Stripe secret in the local Secrets Manager
    secret_arn = local_stack.ref("StripeSecret")
    value = json.loads(local_stack.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    # Then it holds the development key and the signing secrets the provisioner added for the local webhook URL
    assert value["api_key"].startswith("sk" + "_test_")
    assert len(value["webhook_secrets"]) == 2
    headers = {"Authorization": f"Bearer {value['api_key']}"}
    endpoints = requests.get(f"{local_stack.stripe_url}/v1/webhook_endpoints", headers=headers, timeout=10).json()
    [endpoint] = endpoints["data"]
    assert endpoint["url"] == f"{local_stack.api_url}/webhooks/stripe"
    assert sorted(endpoint["enabled_events"]) == sorted(SNAPSHOT_HANDLERS)
    # And the custom resource answered CloudFormation's request with the plan it applied
    assert local_stack.provisioning is not None
    assert local_stack.provisioning.succeeded
    assert local_stack.provisioning.data["PortalConfigurationId"].startswith("bpc_")
    assert local_stack.functions is not None
    assert local_stack.functions.pools["ProvisionerFunction"].invocations >= 1


def test_the_usage_mapping_honours_the_templates_maximum_concurrency(local_stack: LocalStack) -> None:
    # Given the template's usage event source (ScalingConfig.MaximumConcurrency 5)
    [poller] = [p for p in local_stack.pollers if p.source.function_id == "UsageFunction"]
    # Then the local mapping runs that many batches at once and the function has an environment for each
    assert poller.source.concurrency == 5
    assert local_stack.functions is not None
    assert local_stack.functions.pools["UsageFunction"].max_concurrency >= 5
