"""template.yaml passes every rule, and every rule reports a template broken the way it guards against.

Each rule runs twice: on the real template (no findings) and on a mutated copy (a finding naming the problem),
so a rule that silently stopped looking would fail here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.template import load_template
from tests.template import rules

Template = dict[str, Any]


@pytest.fixture(scope="module")
def real_template() -> Template:
    return load_template()


@pytest.fixture
def template(real_template: Template) -> Template:
    """A private copy each test may break."""
    return copy.deepcopy(real_template)


def props(template: Template, logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def fake_key(prefix: str) -> str:
    # Built at runtime so the repository never holds a secret-looking literal.
    return prefix + "_" + "0123456789abcdefABCDEF"


@pytest.mark.parametrize("check", rules.ALL_CHECKS, ids=lambda c: c.__name__)
def test_real_template_has_no_findings(real_template: Template, check: rules.Check) -> None:
    # Given the committed template / When the rule runs / Then it finds nothing
    assert check(real_template) == []


def test_the_template_has_what_the_rules_look_at(real_template: Template) -> None:
    # Guards against rules passing vacuously (no functions, no routes, no queues to check).
    assert len(rules.functions(real_template)) == 8
    assert rules.resources(real_template, rules.PROVISIONING_TYPE)
    routes = {(p["Method"], p["Path"]) for _, _, p in rules.http_api_routes(real_template)}
    assert routes > rules.PUBLIC_ROUTES
    assert ("POST", "/checkout/sessions") in routes
    assert len(list(rules._policy_statements(real_template))) >= 10
    assert rules.resources(real_template, "AWS::SQS::Queue")
    assert rules.resources(real_template, "AWS::Logs::LogGroup")


Mutation = Callable[[Template], None]


def _wildcard_action(t: Template) -> None:
    props(t, "WebhookFunction")["Policies"][0]["Statement"].append(
        {"Effect": "Allow", "Action": "*", "Resource": {"Fn::GetAtt": ["BillingTable", "Arn"]}}
    )


def _service_wildcard(t: Template) -> None:
    props(t, "UsageFunction")["Policies"][0]["Statement"][0]["Action"] = ["dynamodb:*"]


def _partial_action_wildcard(t: Template) -> None:
    props(t, "CheckoutFunction")["Policies"][0]["Statement"][0]["Action"].append("dynamodb:Batch*")


def _wildcard_resource(t: Template) -> None:
    props(t, "PortalFunction")["Policies"][0]["Statement"][1]["Resource"] = "*"


def _wildcard_resource_in_sub(t: Template) -> None:
    props(t, "CheckoutFunction")["Policies"][0]["Statement"][0]["Resource"] = {
        "Fn::Sub": "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"
    }


def _wildcard_in_managed_policy_resource(t: Template) -> None:
    props(t, "UsageProducerPolicy")["PolicyDocument"]["Statement"][0]["Resource"] = "arn:aws:sqs:*:*:*"


def _not_action(t: Template) -> None:
    statement = props(t, "UsageFunction")["Policies"][0]["Statement"][0]
    statement["NotAction"] = statement.pop("Action")


def _named_managed_policy(t: Template) -> None:
    props(t, "PortalFunction")["Policies"].append("AmazonDynamoDBFullAccess")


def _unscoped_policy_template(t: Template) -> None:
    props(t, "PortalFunction")["Policies"].append({"DynamoDBCrudPolicy": {"TableName": "*"}})


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_wildcard_action, "wildcard Action '*'"),
        (_service_wildcard, "wildcard Action 'dynamodb:*'"),
        (_partial_action_wildcard, "wildcard Action 'dynamodb:Batch*'"),
        (_wildcard_resource, "wildcard Resource '*'"),
        (_wildcard_resource_in_sub, "wildcard Resource"),
        (_wildcard_in_managed_policy_resource, "UsageProducerPolicy: wildcard Resource"),
        (_not_action, "NotAction"),
        (_named_managed_policy, "managed policy 'AmazonDynamoDBFullAccess'"),
        (_unscoped_policy_template, "DynamoDBCrudPolicy.TableName is not scoped"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] or None,
)
def test_wildcard_iam_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    # Given a template granting more than it should
    mutate(template)
    # When the IAM rule runs / Then it names the problem
    findings = rules.check_no_wildcard_iam(template)
    assert any(expected in f for f in findings), findings


def test_a_deny_with_wildcards_is_not_a_finding(template: Template) -> None:
    # Given a Deny statement (it only narrows what is granted)
    props(template, "WebhookFunction")["Policies"][0]["Statement"].append(
        {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}
    )
    # Then it is not reported
    assert rules.check_no_wildcard_iam(template) == []


def test_a_shared_role_is_caught(template: Template) -> None:
    # Given two functions pointing at the same role instead of their own policies
    for fn in ("CheckoutFunction", "PortalFunction"):
        props(template, fn).pop("Policies")
        props(template, fn)["Role"] = {"Fn::GetAtt": ["SharedRole", "Arn"]}
    findings = rules.check_functions_have_own_policies(template)
    assert any("PortalFunction: shares a role with CheckoutFunction" in f for f in findings), findings


def test_a_function_without_policies_is_caught(template: Template) -> None:
    props(template, "UsageFunction").pop("Policies")
    assert rules.check_functions_have_own_policies(template) == ["UsageFunction: has no Policies of its own"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t["Parameters"]["AllowedOrigins"].update(Default="*"),
        lambda t: t["Parameters"]["AllowedOrigins"].update(Default="https://app.example.com,https://*.example.com"),
        lambda t: props(t, "HttpApi")["CorsConfiguration"].update(AllowOrigins=["*"]),
        lambda t: props(t, "HttpApi").update(CorsConfiguration="'*'"),
        lambda t: props(t, "HttpApi")["CorsConfiguration"].update(AllowHeaders=["*"]),
    ],
    ids=["parameter-default-star", "wildcard-subdomain", "literal-star", "cors-true-string", "headers-star"],
)
def test_cors_wildcard_is_caught(template: Template, mutate: Mutation) -> None:
    # Given CORS opened to any origin or header
    mutate(template)
    # Then the CORS rule reports it
    assert rules.check_cors_without_wildcard(template)


def test_cors_with_an_empty_origin_list_is_caught(template: Template) -> None:
    template["Parameters"]["AllowedOrigins"]["Default"] = ""
    assert rules.check_cors_without_wildcard(template)


def test_short_visibility_timeout_is_caught(template: Template) -> None:
    # Given the usage queue's visibility timeout below 6x the usage function's 60 s
    props(template, "UsageQueue")["VisibilityTimeout"] = 300
    # Then the rule reports the queue with the needed value
    assert rules.check_visibility_timeout(template) == [
        "UsageQueue: VisibilityTimeout 300 < 360 (6x UsageFunction timeout)"
    ]


def test_raising_the_function_timeout_alone_is_caught(template: Template) -> None:
    # Given a longer usage function timeout without a longer visibility timeout
    props(template, "UsageFunction")["Timeout"] = 90
    assert rules.check_visibility_timeout(template)


def test_omitted_visibility_timeout_counts_as_the_sqs_default(template: Template) -> None:
    props(template, "UsageQueue").pop("VisibilityTimeout")
    assert rules.check_visibility_timeout(template)


def test_an_extra_public_route_is_caught(template: Template) -> None:
    # Given a customer route that opted out of the JWT authorizer
    props(template, "PortalFunction")["Events"]["GetSubscription"]["Properties"]["Auth"] = {"Authorizer": "NONE"}
    assert rules.check_public_routes(template) == [
        "PortalFunction.GetSubscription: GET /billing/subscription is public"
    ]


def test_a_webhook_behind_the_jwt_authorizer_is_caught(template: Template) -> None:
    # Given the webhook route without Authorizer: NONE (Stripe sends no JWT, every delivery would get 401)
    props(template, "WebhookFunction")["Events"]["StripeWebhook"]["Properties"].pop("Auth")
    assert rules.check_public_routes(template) == ["POST /webhooks/stripe must be public (Auth: Authorizer: NONE)"]


def test_a_route_on_an_implicit_api_is_caught(template: Template) -> None:
    # Given a route without ApiId: SAM would create a second API with no authorizer
    props(template, "CheckoutFunction")["Events"]["CreateCheckoutSession"]["Properties"].pop("ApiId")
    findings = rules.check_routes_behind_jwt_with_scope(template)
    assert findings == [
        "CheckoutFunction.CreateCheckoutSession: not attached to the template's HttpApi (SAM would create an open one)"
    ]


def test_missing_default_authorizer_is_caught(template: Template) -> None:
    props(template, "HttpApi")["Auth"].pop("DefaultAuthorizer")
    findings = rules.check_routes_behind_jwt_with_scope(template)
    assert "HttpApi: no DefaultAuthorizer (new routes would be public)" in findings
    assert any("CheckoutFunction.CreateCheckoutSession: no authorizer" in f for f in findings)


def test_an_authorizer_without_scope_is_caught(template: Template) -> None:
    # Given the JWT authorizer with no required scope (an ID token would then be accepted)
    props(template, "HttpApi")["Auth"]["Authorizers"]["JwtAuthorizer"].pop("AuthorizationScopes")
    findings = rules.check_routes_behind_jwt_with_scope(template)
    assert any("PortalFunction.CreatePortalSession: no required scope" in f for f in findings), findings


def test_a_route_clearing_its_scopes_is_caught(template: Template) -> None:
    event = props(template, "CheckoutFunction")["Events"]["GetCheckoutSession"]["Properties"]
    event["Auth"] = {"AuthorizationScopes": []}
    assert rules.check_routes_behind_jwt_with_scope(template) == [
        "CheckoutFunction.GetCheckoutSession: no required scope (an ID token would pass)"
    ]


def test_an_authorizer_without_audience_is_caught(template: Template) -> None:
    props(template, "HttpApi")["Auth"]["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"].pop("audience")
    assert rules.check_routes_behind_jwt_with_scope(template)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: props(t, "HttpApi").pop("DefaultRouteSettings"), "DefaultRouteSettings.ThrottlingBurstLimit"),
        (lambda t: props(t, "HttpApi").pop("AccessLogSettings"), "access logs"),
        (lambda t: props(t, "HttpApi")["AccessLogSettings"].pop("Format"), "Format"),
    ],
    ids=["no-throttling", "no-access-logs", "no-log-format"],
)
def test_http_api_without_throttling_or_access_logs_is_caught(
    template: Template, mutate: Mutation, expected: str
) -> None:
    mutate(template)
    findings = rules.check_http_api_throttling_and_access_logs(template)
    assert any(expected in f for f in findings), findings


def test_log_group_without_retention_is_caught(template: Template) -> None:
    props(template, "WebhookLogGroup").pop("RetentionInDays")
    assert rules.check_log_retention(template) == ["WebhookLogGroup: no RetentionInDays"]


def test_function_logging_to_a_default_group_is_caught(template: Template) -> None:
    props(template, "UsageFunction").pop("LoggingConfig")
    assert rules.check_log_retention(template) == ["UsageFunction: does not log to a log group with retention"]


def test_dlq_retention_shorter_than_14_days_is_caught(template: Template) -> None:
    props(template, "UsageDeadLetterQueue")["MessageRetentionPeriod"] = 345600
    assert rules.check_dead_letter_queues(template) == [
        "UsageDeadLetterQueue: MessageRetentionPeriod 345600 is not 14 days"
    ]


def test_a_queue_without_dlq_feeding_a_function_is_caught(template: Template) -> None:
    props(template, "UsageQueue").pop("RedrivePolicy")
    assert rules.check_dead_letter_queues(template) == [
        "UsageQueue: feeds UsageFunction.UsageRecords without a dead-letter queue"
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: props(t, "BillingTable").pop("PointInTimeRecoverySpecification"), "point-in-time recovery off"),
        (
            lambda t: props(t, "BillingTable")["SSESpecification"].update(SSEEnabled=False),
            "SSESpecification.SSEEnabled off",
        ),
        (lambda t: props(t, "BillingTable").pop("TimeToLiveSpecification"), "TTL off"),
        (lambda t: props(t, "BillingTable").update(BillingMode="PROVISIONED"), "not on-demand"),
    ],
    ids=["no-pitr", "no-sse", "no-ttl", "provisioned"],
)
def test_unprotected_table_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    mutate(template)
    assert rules.check_table_protection(template) == [f"BillingTable: {expected}"]


def test_secret_value_in_the_template_is_caught(template: Template) -> None:
    # Given the Stripe secret's value written into the template
    props(template, "StripeSecret")["SecretString"] = '{"api_key": "see deploy notes"}'
    assert rules.check_secret_values_absent(template) == ["StripeSecret: SecretString in the template"]


@pytest.mark.parametrize("prefix", ["sk_live", "sk_test", "rk_live", "rk_test", "whsec"])
def test_secret_literal_anywhere_in_the_template_is_caught(template: Template, prefix: str) -> None:
    # Given a key hard-coded as an environment variable (checkov's CKV_AWS_45 passed a whsec_ value)
    props(template, "WebhookFunction").setdefault("Environment", {"Variables": {}})["Variables"]["STRIPE_KEY"] = (
        fake_key(prefix)
    )
    findings = rules.check_secret_values_absent(template)
    assert len(findings) == 1
    assert findings[0].startswith("secret-looking literal " + prefix)
    # and the report does not repeat the whole value
    assert fake_key(prefix) not in findings[0]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t["Globals"]["Function"].update(Runtime="python3.12"), "Runtime 'python3.12'"),
        (lambda t: t["Globals"]["Function"].update(Architectures=["x86_64"]), "Architectures"),
        (lambda t: t["Globals"]["Function"].pop("Tracing"), "Tracing is not Active"),
        (lambda t: t["Globals"]["Function"].pop("Timeout"), "Timeout not explicit"),
        (lambda t: t["Globals"]["Function"].pop("Layers"), "shared layer"),
        (lambda t: t["Globals"]["Function"]["Environment"]["Variables"].pop("STRIPE_SECRET_ARN"), "STRIPE_SECRET_ARN"),
        (lambda t: props(t, "UsageFunction").update(Runtime="python3.11"), "UsageFunction: overrides Runtime"),
        (lambda t: props(t, "PortalFunction").update(Architectures=["x86_64"]), "PortalFunction: overrides Arch"),
    ],
    ids=["runtime", "arch", "tracing", "timeout", "layer", "env", "fn-runtime", "fn-arch"],
)
def test_runtime_globals_drift_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    mutate(template)
    findings = rules.check_runtime_globals(template)
    assert any(expected in f for f in findings), findings


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t["Resources"]["CommonLayer"]["Metadata"].update(BuildMethod="python3.12"), "BuildMethod"),
        (lambda t: t["Resources"]["CommonLayer"]["Metadata"].pop("BuildArchitecture"), "BuildArchitecture"),
        (lambda t: props(t, "CommonLayer").update(CompatibleRuntimes=["python3.12"]), "CompatibleRuntimes"),
    ],
    ids=["build-method", "build-arch", "runtimes"],
)
def test_layer_build_drift_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    mutate(template)
    findings = rules.check_layer_build(template)
    assert any(expected in f for f in findings), findings


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda t: props(t, "UsageFunction")["Events"]["UsageRecords"]["Properties"].pop("FunctionResponseTypes"),
            "no ReportBatchItemFailures",
        ),
        (
            lambda t: props(t, "UsageFunction")["Events"]["UsageRecords"]["Properties"].pop("BatchSize"),
            "BatchSize not explicit",
        ),
        (
            lambda t: props(t, "UsageFunction")["Events"]["UsageRecords"]["Properties"].pop("ScalingConfig"),
            "MaximumConcurrency not set",
        ),
    ],
    ids=["no-partial-failures", "no-batch-size", "no-max-concurrency"],
)
def test_sqs_event_source_drift_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    mutate(template)
    findings = rules.check_sqs_event_sources(template)
    assert any(expected in f for f in findings), findings


@pytest.mark.parametrize(
    ("removed", "expected"),
    [
        ("WebhookErrorsAlarm", "WebhookFunction: no Errors alarm"),
        ("UsageDeadLetterDepthAlarm", "UsageDeadLetterQueue: no depth alarm"),
        ("UsageOldestMessageAlarm", "UsageQueue: no age-of-oldest-message alarm"),
    ],
)
def test_missing_alarm_is_caught(template: Template, removed: str, expected: str) -> None:
    template["Resources"].pop(removed)
    assert rules.check_alarms(template) == [expected]


def test_alarm_without_actions_is_caught(template: Template) -> None:
    props(template, "CheckoutErrorsAlarm").pop("AlarmActions")
    assert rules.check_alarms(template) == ["CheckoutErrorsAlarm: no AlarmActions"]


@pytest.mark.parametrize("removed", ["WebhookUrl", "StripeSecretArn", "UserPoolClientId"])
def test_missing_output_is_caught(template: Template, removed: str) -> None:
    template["Outputs"].pop(removed)
    assert any(removed in f for f in rules.check_outputs(template))


def _webhook_may_put_events(t: Template) -> None:
    props(t, "WebhookFunction")["Policies"][0]["Statement"].append(
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::GetAtt": ["BillingEventBus", "Arn"]}}
    )


def _sam_stream_event(t: Template) -> None:
    props(t, "PublisherFunction")["Events"] = {
        "Changes": {"Type": "DynamoDB", "Properties": {"Stream": {"Fn::GetAtt": ["BillingTable", "StreamArn"]}}}
    }


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: props(t, "BillingTable").pop("StreamSpecification"), "BillingTable: no NEW_AND_OLD_IMAGES stream"),
        (
            lambda t: props(t, "PublisherStreamMapping").pop("FunctionResponseTypes"),
            "stream mapping without partial batch responses",
        ),
        (
            lambda t: props(t, "PublisherStreamMapping").update(BisectBatchOnFunctionError=False),
            "stream mapping does not bisect on error",
        ),
        (
            lambda t: props(t, "PublisherStreamMapping").update(MaximumRetryAttempts=-1),
            "stream mapping retries unbounded or unusual: -1",
        ),
        (
            lambda t: props(t, "PublisherStreamMapping").pop("DestinationConfig"),
            "stream mapping without an SQS on-failure destination",
        ),
        (
            lambda t: t["Resources"].pop("DomainEventsDeadLetterAlarm"),
            "DomainEventsDeadLetterQueue: no depth alarm",
        ),
        (_webhook_may_put_events, "WebhookFunction: has an EventBridge permission"),
        (_sam_stream_event, "PublisherFunction: a SAM stream event (attaches a managed policy with Resource '*')"),
    ],
)
def test_domain_event_publishing_drift_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    # Given the stack with one part of publishing from the table's stream broken / Then the rule names it
    mutate(template)
    assert expected in rules.check_domain_events_from_the_stream(template)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t["Resources"].pop("StripeProvisioning"), "expected one Custom::StripeProvisioning"),
        (
            lambda t: props(t, "StripeProvisioning").update(ServiceToken="arn:aws:lambda:us-east-1:1:function:x"),
            "ServiceToken is not a function of this template",
        ),
        (
            lambda t: props(t, "StripeProvisioning").update(PlanCatalog='{"plans": []}'),
            "PlanCatalog is not",
        ),
        (
            lambda t: props(t, "StripeProvisioning").update(WebhookUrl="https://elsewhere.example/hook"),
            "WebhookUrl differs",
        ),
        (
            lambda t: props(t, "ProvisionerFunction")["Policies"][0]["Statement"].append(
                {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["BillingTable", "Arn"]}}
            ),
            "ProvisionerFunction: actions beyond the Stripe secret",
        ),
        (
            lambda t: props(t, "WebhookFunction")["Policies"][0]["Statement"].append(
                {"Effect": "Allow", "Action": "secretsmanager:PutSecretValue", "Resource": {"Ref": "StripeSecret"}}
            ),
            "WebhookFunction: may write the Stripe secret",
        ),
    ],
)
def test_stripe_provisioning_drift_is_caught(template: Template, mutate: Mutation, expected: str) -> None:
    mutate(template)
    findings = rules.check_stripe_provisioning(template)
    assert any(expected in f for f in findings), findings


def test_the_provisioner_has_a_log_group_and_an_errors_alarm_like_every_function(template: Template) -> None:
    # Given the provisioner without its alarm and logging to a default group
    template["Resources"].pop("ProvisionerErrorsAlarm")
    props(template, "ProvisionerFunction").pop("LoggingConfig")
    # Then the generic rules name it
    assert rules.check_alarms(template) == ["ProvisionerFunction: no Errors alarm"]
    assert rules.check_log_retention(template) == ["ProvisionerFunction: does not log to a log group with retention"]


def test_an_iam_grant_wider_than_a_route_parameter_is_caught(template: Template) -> None:
    # Given the reader policy widened from the user id segment to every GET of the stage
    policy = template["Resources"]["ServiceReaderPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    arn = policy["Resource"][0]["Fn::Sub"]
    policy["Resource"][0] = {"Fn::Sub": arn.split("/GET/")[0] + "/GET/*"}
    # When the rule runs / Then the wider grant is reported (the parameter-only one still is not)
    findings = rules.check_no_wildcard_iam(template)
    assert findings == [f"ServiceReaderPolicy: wildcard Resource {arn.split('/GET/')[0] + '/GET/*'!r}"]


def test_a_user_route_moved_to_the_iam_authorizer_is_caught(template: Template) -> None:
    # Given a browser route switched from the JWT to SigV4
    events = props(template, "PortalFunction")["Events"]
    name = next(n for n, e in events.items() if e["Properties"].get("Path") == "/billing/invoices")
    events[name]["Properties"]["Auth"] = {"Authorizer": "AWS_IAM"}
    # Then the JWT rule reports it
    assert rules.check_routes_behind_jwt_with_scope(template) == [
        f"PortalFunction.{name}: AWS_IAM outside /service/ (user routes need the JWT)"
    ]
