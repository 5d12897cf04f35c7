"""The local AWS resources come from template.yaml: created on a moto server from the template's own definitions."""

from __future__ import annotations

import json
from typing import Any

from devstack.aws_resources import CreatedResource, create_from_template, creation_order, local_clients
from devstack.functions import functions_from_template, lambda_environment
from devstack.sqs_poller import sqs_sources_from_template
from devstack.template import ROOT, TEMPLATE_PATH, Resolver, load_template, load_template_text


def build(endpoint: str, template: dict[str, Any], stack_name: str) -> tuple[Resolver, dict[str, CreatedResource]]:
    resolver = Resolver(template, stack_name=stack_name)
    return resolver, create_from_template(resolver, local_clients(endpoint, "us-east-1"))


def queue_attributes(endpoint: str, url: str) -> dict[str, str]:
    attrs: dict[str, str] = local_clients(endpoint, "us-east-1")("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"]
    )["Attributes"]
    return attrs


def test_resources_are_created_from_the_templates_definitions(moto_endpoint: str) -> None:
    # Given the template
    template = load_template()
    props = {lid: r.get("Properties", {}) for lid, r in template["Resources"].items()}
    # When the stand-ins are built from it
    _, created = build(moto_endpoint, template, "original")
    clients = local_clients(moto_endpoint, "us-east-1")
    # Then the table has the template's keys and TTL
    table = clients("dynamodb").describe_table(TableName=created["BillingTable"].ref)["Table"]
    assert table["KeySchema"] == props["BillingTable"]["KeySchema"]
    assert table["AttributeDefinitions"] == props["BillingTable"]["AttributeDefinitions"]
    ttl = clients("dynamodb").describe_time_to_live(TableName=created["BillingTable"].ref)
    assert (
        ttl["TimeToLiveDescription"]["AttributeName"]
        == props["BillingTable"]["TimeToLiveSpecification"]["AttributeName"]
    )
    # And the usage queue has its visibility timeout and a redrive to the DLQ after maxReceiveCount
    usage = queue_attributes(moto_endpoint, created["UsageQueue"].ref)
    assert usage["VisibilityTimeout"] == str(props["UsageQueue"]["VisibilityTimeout"])
    redrive = json.loads(usage["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == created["UsageDeadLetterQueue"].attributes["Arn"]
    assert int(redrive["maxReceiveCount"]) == int(template["Parameters"]["UsageMaxReceiveCount"]["Default"])
    # And the secret, the event bus and the user pool (the template's default: no external issuer) exist
    assert clients("secretsmanager").describe_secret(SecretId=created["StripeSecret"].ref)["Name"] == "original/stripe"
    assert clients("events").describe_event_bus(Name=created["BillingEventBus"].ref)["Name"] == "original-billing"
    pool_client = clients("cognito-idp").describe_user_pool_client(
        UserPoolId=created["UserPool"].ref, ClientId=created["UserPoolClient"].ref
    )["UserPoolClient"]
    assert pool_client["ExplicitAuthFlows"] == props["UserPoolClient"]["ExplicitAuthFlows"]
    # And resources with no local behaviour are references only
    assert not created["CheckoutErrorsAlarm"].local


def test_a_changed_copy_of_the_template_builds_a_different_stack(moto_endpoint: str) -> None:
    # Given a copy of the template with a different visibility timeout, receive count, sort key and function timeout
    original = TEMPLATE_PATH.read_text()
    text = original.replace("VisibilityTimeout: 360", "VisibilityTimeout: 42", 1)
    text = text.replace(
        "  UsageMaxReceiveCount:\n    Type: Number\n    Default: 5",
        "  UsageMaxReceiveCount:\n    Type: Number\n    Default: 2",
        1,
    )
    text = text.replace("AttributeName: sk", "AttributeName: sort_key")
    text = text.replace("Handler: app.handler\n      Timeout: 60", "Handler: app.handler\n      Timeout: 7", 1)
    assert text != original
    changed = load_template_text(text)
    # When stacks are built from the original and from the copy
    resolver_a, stack_a = build(moto_endpoint, load_template(), "stack-a")
    resolver_b, stack_b = build(moto_endpoint, changed, "stack-b")
    # Then the stack built from the copy differs exactly as the copy does
    a = queue_attributes(moto_endpoint, stack_a["UsageQueue"].ref)
    b = queue_attributes(moto_endpoint, stack_b["UsageQueue"].ref)
    assert (a["VisibilityTimeout"], b["VisibilityTimeout"]) == ("360", "42")
    assert int(json.loads(a["RedrivePolicy"])["maxReceiveCount"]) == 5
    assert int(json.loads(b["RedrivePolicy"])["maxReceiveCount"]) == 2
    dynamodb = local_clients(moto_endpoint, "us-east-1")("dynamodb")
    keys_b = dynamodb.describe_table(TableName=stack_b["BillingTable"].ref)["Table"]["KeySchema"]
    assert {k["AttributeName"] for k in keys_b} == {"pk", "sort_key"}
    assert functions_from_template(resolver_a)["UsageFunction"].timeout_seconds == 60
    assert functions_from_template(resolver_b)["UsageFunction"].timeout_seconds == 7


def test_functions_get_globals_and_their_own_environment_resolved_to_local_resources(moto_endpoint: str) -> None:
    resolver, created = build(moto_endpoint, load_template(), "envcheck")
    specs = functions_from_template(resolver)
    # Every function and its handler, code and layer directories come from the template
    assert set(specs) == {
        "CheckoutFunction",
        "PortalFunction",
        "WebhookFunction",
        "UsageFunction",
        "PublisherFunction",
        "UsageDriftFunction",
        "ProvisionerFunction",
        "StripeEventsFunction",
    }
    checkout = specs["CheckoutFunction"]
    assert checkout.code_dir == ROOT / "functions/checkout/"
    assert checkout.layer_dirs == (ROOT / "layers/common/",)
    assert checkout.timeout_seconds == 15
    assert checkout.memory_mb == 512
    # Globals and the function's own variables, with intrinsics resolved to the local resources
    assert checkout.environment["TABLE_NAME"] == created["BillingTable"].ref
    assert checkout.environment["STRIPE_SECRET_ARN"] == created["StripeSecret"].ref
    assert "{CHECKOUT_SESSION_ID}" in checkout.environment["CHECKOUT_SUCCESS_URL"]
    assert specs["UsageFunction"].environment["USAGE_QUEUE_URL"] == created["UsageQueue"].ref
    assert specs["PublisherFunction"].environment["EVENT_BUS_NAME"] == created["BillingEventBus"].ref
    assert "EVENT_BUS_NAME" not in specs["WebhookFunction"].environment  # the stream publishes, not the webhook
    # Local values are added on top; nothing leaks in from the developer's shell
    env = lambda_environment(checkout, {"AWS_ENDPOINT_URL": moto_endpoint})
    assert env["AWS_ENDPOINT_URL"] == moto_endpoint
    assert env["_HANDLER"] == "app.handler"
    assert "AWS_PROFILE" not in env
    assert "PYTEST_CURRENT_TEST" not in env


def test_sqs_event_source_settings_come_from_the_template() -> None:
    resolver = Resolver(load_template())
    [source] = [s for s in sqs_sources_from_template(resolver) if s.function_id == "UsageFunction"]
    event = load_template()["Resources"]["UsageFunction"]["Properties"]["Events"]["UsageRecords"]["Properties"]
    assert source.function_id == "UsageFunction"
    assert source.queue_id == "UsageQueue"
    assert source.batch_size == event["BatchSize"]
    assert source.window_seconds == event["MaximumBatchingWindowInSeconds"]
    assert source.report_batch_item_failures is True


def test_resources_are_created_after_what_they_reference() -> None:
    order = creation_order(load_template()["Resources"])
    assert order.index("UsageDeadLetterQueue") < order.index("UsageQueue")
    assert order.index("UserPool") < order.index("UserPoolClient") < order.index("HttpApi")
