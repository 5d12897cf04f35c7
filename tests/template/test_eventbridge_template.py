"""The template's EventBridge ingress (StripeEventIngress): what each mode creates, the rule pattern, the queue and
its DLQ, the queue policy, the function's least privilege, the alarms. Conditions are evaluated the way
CloudFormation does (devstack.template.Resolver)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Resolver
from tests.support.template import load_template
from tests.template import rules

EVENTBRIDGE_ONLY = {
    "StripeSnapshotEventBus",
    "StripeThinEventBus",
    "StripeSnapshotEventArchive",
    "StripeThinEventArchive",
    "StripeSnapshotEventRule",
    "StripeThinEventRule",
    "StripeEventsQueuePolicy",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def enabled(template: dict[str, Any], ingress: str) -> set[str]:
    resolver = Resolver(template, parameter_overrides={"StripeEventIngress": ingress})
    return {lid for lid in template["Resources"] if resolver.resource_enabled(lid)}


def props(template: dict[str, Any], lid: str) -> dict[str, Any]:
    return dict(template["Resources"][lid]["Properties"])


def test_the_parameter_offers_the_three_modes_and_defaults_to_the_webhook(template: dict[str, Any]) -> None:
    spec = template["Parameters"]["StripeEventIngress"]
    assert (spec["Default"], spec["AllowedValues"]) == ("webhook", ["webhook", "eventbridge", "both"])


#: What exists only while Stripe may deliver over HTTP: the webhook route's function, its logs and alarms.
WEBHOOK_ONLY = {
    "WebhookFunction",
    "WebhookLogGroup",
    "WebhookErrorsAlarm",
    "WebhookSignatureFailuresAlarm",
    "WebhookLagAlarm",
}


@pytest.mark.parametrize(("ingress", "bridged"), [("webhook", False), ("eventbridge", True), ("both", True)])
def test_each_mode_creates_the_partner_buses_rules_and_archives_only_when_it_uses_eventbridge(
    template: dict[str, Any], ingress: str, bridged: bool
) -> None:
    on = enabled(template, ingress)
    assert (EVENTBRIDGE_ONLY & on) == (EVENTBRIDGE_ONLY if bridged else set())
    # The queue, its DLQ and the consuming function exist in every mode (idle, they cost nothing)
    assert {"StripeEventsQueue", "StripeEventsDeadLetterQueue", "StripeEventsFunction"} <= on


def webhook_routes(template: dict[str, Any], ingress: str) -> list[tuple[str, str, str]]:
    """The HTTP API's routes to /webhooks/stripe as CloudFormation would create them in this mode."""
    resolver = Resolver(template, parameter_overrides={"StripeEventIngress": ingress})
    routes = []
    for lid, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function" or not resolver.resource_enabled(lid):
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi" and event["Properties"]["Path"] == "/webhooks/stripe":
                routes.append((lid, event["Properties"]["Method"], event["Properties"]["Path"]))
    return routes


@pytest.mark.parametrize(("ingress", "webhook"), [("webhook", True), ("eventbridge", False), ("both", True)])
def test_the_webhook_route_and_its_function_exist_only_when_stripe_delivers_over_http(
    template: dict[str, Any], ingress: str, webhook: bool
) -> None:
    on = enabled(template, ingress)
    # Then with eventbridge alone no webhook function, log group or alarm is created, and no route registered;
    # the webhook and both modes (the controls) keep all of them and POST /webhooks/stripe
    assert (WEBHOOK_ONLY & on) == (WEBHOOK_ONLY if webhook else set())
    assert webhook_routes(template, ingress) == ([("WebhookFunction", "POST", "/webhooks/stripe")] if webhook else [])
    outputs = Resolver(template, parameter_overrides={"StripeEventIngress": ingress})
    assert outputs.condition(template["Outputs"]["WebhookUrl"]["Condition"]) is webhook


@pytest.mark.parametrize("ingress", ["webhook", "eventbridge", "both"])
def test_the_dashboard_names_the_webhook_only_where_it_exists(template: dict[str, Any], ingress: str) -> None:
    # Given the dashboard body as CloudFormation substitutes it in this mode (a reference to a resource whose
    # condition is false would fail the deploy)
    resolver = Resolver(template, parameter_overrides={"StripeEventIngress": ingress})
    names = {lid: lid for lid in template["Resources"]}
    resolver.refs.update(names)
    for lid in names:
        resolver.attributes.update({(lid, a): f"{lid}.{a}" for a in ("Arn", "QueueName")})
    body = json.loads(resolver.resolve(props(template, "OperationsDashboard")["DashboardBody"]))
    text = json.dumps(body)
    # Then it is valid JSON in every mode, and names the webhook's function and alarms exactly when they exist
    webhook = "WebhookFunction" in enabled(template, ingress)
    assert ('"WebhookFunction"' in text) is webhook
    assert all((f"{alarm}.Arn" in text) is webhook for alarm in WEBHOOK_ONLY if alarm.endswith("Alarm"))
    # And the EventBridge path's function and alarms are on it in every mode
    assert '"StripeEventsFunction"' in text
    assert "StripeEventSourceRefusedAlarm.Arn" in text


def test_provisioning_is_told_the_mode_and_where_stripe_creates_the_partner_sources(template: dict[str, Any]) -> None:
    p = props(template, "StripeProvisioning")
    assert p["EventIngress"] == {"Ref": "StripeEventIngress"}
    assert (p["AwsAccountId"], p["AwsRegion"]) == ({"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"})


@pytest.mark.parametrize(("bus", "attribute"), [("StripeSnapshotEventBus", "SnapshotEventSourceName"),
                                                ("StripeThinEventBus", "ThinEventSourceName")])  # fmt: skip
def test_each_bus_is_named_after_and_associated_with_its_partner_source(
    template: dict[str, Any], bus: str, attribute: str
) -> None:
    source = {"Fn::GetAtt": ["StripeProvisioning", attribute]}
    assert props(template, bus) == {"Name": source, "EventSourceName": source}


@pytest.mark.parametrize(("rule", "bus"), [("StripeSnapshotEventRule", "StripeSnapshotEventBus"),
                                           ("StripeThinEventRule", "StripeThinEventBus")])  # fmt: skip
def test_each_rule_takes_only_stripe_partner_events_from_its_bus_to_the_queue(
    template: dict[str, Any], rule: str, bus: str
) -> None:
    p = props(template, rule)
    assert p["EventBusName"] == {"Ref": bus}
    assert p["EventPattern"] == {"source": [{"prefix": "aws.partner/stripe.com"}]}
    assert p["State"] == "ENABLED"
    assert p["Targets"] == [{"Id": "StripeEventsQueue", "Arn": {"Fn::GetAtt": ["StripeEventsQueue", "Arn"]}}]


def test_the_queue_buffers_with_a_dlq_and_a_visibility_timeout_that_covers_the_function(
    template: dict[str, Any],
) -> None:
    queue, dlq = props(template, "StripeEventsQueue"), props(template, "StripeEventsDeadLetterQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["StripeEventsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "StripeEventsMaxReceiveCount"},
    }
    function = template["Resources"]["StripeEventsFunction"]
    assert queue["VisibilityTimeout"] >= 6 * rules.function_timeout(template, function)
    assert dlq["MessageRetentionPeriod"] == 1_209_600
    assert queue["SqsManagedSseEnabled"] is dlq["SqsManagedSseEnabled"] is True


def test_only_the_two_rules_may_send_to_the_queue(template: dict[str, Any]) -> None:
    (statement,) = props(template, "StripeEventsQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["StripeEventsQueue", "Arn"]}
    assert statement["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": [
                {"Fn::GetAtt": ["StripeSnapshotEventRule", "Arn"]},
                {"Fn::GetAtt": ["StripeThinEventRule", "Arn"]},
            ]
        }
    }


def test_the_function_consumes_with_partial_batch_responses_and_has_least_privilege(
    template: dict[str, Any],
) -> None:
    fn = props(template, "StripeEventsFunction")
    (source,) = fn["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["StripeEventsQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["ScalingConfig"]["MaximumConcurrency"] <= 10
    # The webhook's table and secret actions, nothing else (no events:*, no sqs:SendMessage, no wildcards)
    statements = fn["Policies"][0]["Statement"]
    actions = {a for s in statements for a in rules.as_list(s["Action"])}
    webhook = {
        a for s in props(template, "WebhookFunction")["Policies"][0]["Statement"] for a in rules.as_list(s["Action"])
    }
    assert actions == webhook
    assert all(s["Resource"] in ({"Fn::GetAtt": ["BillingTable", "Arn"]}, {"Ref": "StripeSecret"}) for s in statements)
    # It trusts exactly the partner sources provisioning created
    assert fn["Environment"]["Variables"]["STRIPE_EVENT_SOURCES"] == {
        "Fn::Sub": "${StripeProvisioning.SnapshotEventSourceName},${StripeProvisioning.ThinEventSourceName}"
    }


@pytest.mark.parametrize(
    ("alarm", "metric", "target"),
    [
        ("StripeEventsDeadLetterAlarm", "ApproximateNumberOfMessagesVisible", "StripeEventsDeadLetterQueue"),
        ("StripeEventsOldestMessageAlarm", "ApproximateAgeOfOldestMessage", "StripeEventsQueue"),
        ("StripeEventsErrorsAlarm", "Errors", "StripeEventsFunction"),
        ("StripeEventSourceRefusedAlarm", "StripeEventSourceRefused", None),
    ],
)
def test_the_alarms_watch_the_queue_the_dlq_the_function_and_refused_sources(
    template: dict[str, Any], alarm: str, metric: str, target: str | None
) -> None:
    p = props(template, alarm)
    assert p["MetricName"] == metric
    (dimension,) = p["Dimensions"]
    assert (rules.referenced_name(dimension["Value"]) if target else dimension["Value"]) == (target or "tollgate")
    assert p["AlarmActions"]["Fn::If"][0] == "HasAlarmEmail"


@pytest.mark.parametrize(
    ("alarm", "finding"),
    [
        ("StripeEventsDeadLetterAlarm", "StripeEventsDeadLetterQueue: no depth alarm"),
        ("StripeEventsOldestMessageAlarm", "StripeEventsQueue: no age-of-oldest-message alarm"),
        ("StripeEventsErrorsAlarm", "StripeEventsFunction: no Errors alarm"),
    ],
)
def test_control_the_generic_alarm_rules_catch_a_missing_eventbridge_alarm(
    template: dict[str, Any], alarm: str, finding: str
) -> None:
    # The project-wide rules (every DLQ, queue and function has its alarm) hold for the new resources ...
    assert not [f for f in rules.check_alarms(template) if "StripeEvents" in f]
    # ... and notice when one of them is removed
    broken = {**template, "Resources": {k: v for k, v in template["Resources"].items() if k != alarm}}
    assert finding in rules.check_alarms(broken)
