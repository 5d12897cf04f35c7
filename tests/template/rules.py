"""Template rules the linters miss, written as ``check_xxx(template) -> list[str]`` so each can be run on the real
template (no findings) and on a deliberately broken copy (findings).

cfn-lint and checkov passed a wildcard IAM action, CORS ``*`` and a hard-coded ``whsec_`` value in a probe
template, and cfn-lint's visibility-timeout check does not fire for SAM's ``Events: Type: SQS`` form
(``../shared/guides/aws-offline.md``). These rules read the SAM template as written (``tests.support.template``).

Documented exception to "no wildcard IAM": SAM attaches the managed policies ``AWSLambdaBasicExecutionRole``
(logs) and, with ``Tracing: Active``, ``AWSXRayDaemonWriteAccess`` to every function role it creates. They are not
in ``template.yaml``; X-Ray's ``PutTraceSegments`` has no resource-level permissions, so ``Resource: "*"`` there is
AWS's design, not ours. Any managed policy named in the template itself is a finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tests.support.template import resources_of_type

Template = dict[str, Any]
Check = Callable[[Template], list[str]]

PUBLIC_ROUTES = frozenset({("POST", "/webhooks/stripe"), ("GET", "/plans"), ("GET", "/openapi.json")})
SERVICE_ROUTE_PREFIX = "/service/"  # the only routes behind the IAM authorizer (docs/service-api.md)
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
VISIBILITY_TIMEOUT_FACTOR = 6
# CloudFormation/Lambda defaults when a property is omitted.
DEFAULT_FUNCTION_TIMEOUT = 3
DEFAULT_VISIBILITY_TIMEOUT = 30

# Stripe secret/restricted keys and webhook signing secrets followed by key material. The prefixes alone (in docs
# such as "keys start with sk_live_") are fine; eight or more key characters after them are not.
SECRET_LITERAL = re.compile(
    rb"(?:sk|rk)_(?:live|test)_[0-9A-Za-z][0-9A-Za-z_]{7,}|whsec_[0-9A-Za-z+/=][0-9A-Za-z_+/=]{7,}"
)


def secret_literals_in(data: bytes | str) -> list[str]:
    """Secret-looking literals in ``data``, each shortened so a report never repeats a whole key."""
    raw = data.encode() if isinstance(data, str) else data
    return [match.group(0)[:12].decode(errors="replace") + "..." for match in SECRET_LITERAL.finditer(raw)]


# ---------------------------------------------------------------- helpers


def resources(template: Template, type_name: str) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, type_name)


def functions(template: Template) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


def globals_function(template: Template) -> dict[str, Any]:
    return dict(template.get("Globals", {}).get("Function", {}))


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def referenced_name(value: Any) -> str | None:
    """The logical id behind ``!Ref X`` or ``!GetAtt X.Attr``; None for anything else."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
    return None


def strings_in(value: Any) -> Iterator[str]:
    """Every literal string inside a (possibly intrinsic) value: a wildcard can hide in ``!Sub`` or ``!Join``."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("Ref", "Fn::GetAtt"):
                continue  # logical ids and attribute names, never permissions
            yield from strings_in(item)


def http_api_routes(template: Template) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(function, event name, event properties) for every HttpApi event of every function."""
    for fn_name, fn in functions(template).items():
        for event_name, event in (fn.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") == "HttpApi":
                yield fn_name, event_name, event.get("Properties") or {}


def function_timeout(template: Template, fn: dict[str, Any]) -> int:
    timeout = fn.get("Properties", {}).get("Timeout", globals_function(template).get("Timeout"))
    return int(timeout) if timeout is not None else DEFAULT_FUNCTION_TIMEOUT


def parameter_default(template: Template, value: Any) -> Any:
    """A literal value, or the default of the parameter it references."""
    name = referenced_name(value)
    if name is not None and name in template.get("Parameters", {}):
        return template["Parameters"][name].get("Default")
    return value


# ---------------------------------------------------------------- IAM


def _policy_statements(template: Template) -> Iterator[tuple[str, Any]]:  # noqa: C901 - one loop per place IAM hides
    """(where, statement) for every IAM statement the template writes, inline or in IAM resources."""
    for fn_name, fn in functions(template).items():
        for index, policy in enumerate(as_list(fn.get("Properties", {}).get("Policies"))):
            if isinstance(policy, dict) and "Statement" in policy:
                for statement in as_list(policy["Statement"]):
                    yield f"{fn_name}.Policies[{index}]", statement
    documents: list[tuple[str, Any]] = []
    for name, res in resources(template, "AWS::IAM::ManagedPolicy").items():
        documents.append((name, res.get("Properties", {}).get("PolicyDocument")))
    for kind in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
        for name, res in resources(template, kind).items():
            documents.append((name, res.get("Properties", {}).get("PolicyDocument")))
    for name, res in resources(template, "AWS::IAM::Role").items():
        for index, policy in enumerate(as_list(res.get("Properties", {}).get("Policies"))):
            documents.append((f"{name}.Policies[{index}]", policy.get("PolicyDocument")))
    for where, document in documents:
        for statement in as_list((document or {}).get("Statement")):
            yield where, statement


EXECUTE_API_ROUTE_ARN = re.compile(
    r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{HttpApi\}/\$\{Stage\}"
    r"/(?P<method>[A-Z]+)(?P<path>/.*)"
)


def iam_routes(template: Template) -> set[tuple[str, str]]:
    """(method, path) of every route behind API Gateway's IAM authorizer (SigV4)."""
    return {
        (str(props.get("Method", "")).upper(), str(props.get("Path", "")))
        for _, _, props in http_api_routes(template)
        if (props.get("Auth") or {}).get("Authorizer") == "AWS_IAM"
    }


def _is_iam_route_arn(template: Template, statement: dict[str, Any], literal: str) -> bool:
    """An ``execute-api:Invoke`` grant on one IAM route of this stack's API and stage, whose ``*`` segments are
    exactly that route's path parameters: the wildcard stands for a user id, never for a method, stage or other
    route (an execute-api ARN cannot name a parameter any other way)."""
    if list(strings_in(statement.get("Action"))) != ["execute-api:Invoke"]:
        return False
    match = EXECUTE_API_ROUTE_ARN.fullmatch(literal)
    if match is None:
        return False
    granted = match["path"].split("/")
    for method, path in iam_routes(template):
        segments = path.split("/")
        if method != match["method"] or len(segments) != len(granted):
            continue
        if all(
            g == s or (g == "*" and s.startswith("{") and s.endswith("}"))
            for g, s in zip(granted, segments, strict=True)
        ):
            return True
    return False


def check_no_wildcard_iam(template: Template) -> list[str]:  # noqa: C901 - a flat checklist, one branch per rule
    """No ``*`` in any Action or Resource (``dynamodb:*`` included), no NotAction/NotResource, no managed policies
    or unscoped SAM policy templates on functions, no shared roles."""
    findings: list[str] = []
    for where, statement in _policy_statements(template):
        if not isinstance(statement, dict):
            findings.append(f"{where}: statement is not a mapping")
            continue
        if statement.get("Effect", "Allow") != "Allow":
            continue  # a Deny with a wildcard narrows, it never grants
        for inverse in ("NotAction", "NotResource"):
            if inverse in statement:
                findings.append(f"{where}: {inverse} grants everything except a list")
        for key in ("Action", "Resource"):
            if key not in statement:
                findings.append(f"{where}: statement without {key}")
            for literal in strings_in(statement.get(key)):
                if "*" in literal and not (key == "Resource" and _is_iam_route_arn(template, statement, literal)):
                    findings.append(f"{where}: wildcard {key} {literal!r}")
    for fn_name, fn in functions(template).items():
        props = fn.get("Properties", {})
        for index, policy in enumerate(as_list(props.get("Policies"))):
            if isinstance(policy, str):
                findings.append(f"{fn_name}.Policies[{index}]: managed policy {policy!r} (write scoped statements)")
            elif isinstance(policy, dict) and "Statement" not in policy:
                # A SAM policy template: every parameter must reference a resource of this stack.
                for template_name, params in policy.items():
                    for param, value in (params or {}).items():
                        if referenced_name(value) is None:
                            findings.append(
                                f"{fn_name}.Policies[{index}]: {template_name}.{param} is not scoped to a resource"
                            )
        for key in ("ManagedPolicyArns", "PermissionsBoundary"):
            if key in props:
                findings.append(f"{fn_name}: {key} adds permissions the template does not show")
    for name, res in resources(template, "AWS::IAM::Role").items():
        for arn in as_list(res.get("Properties", {}).get("ManagedPolicyArns")):
            if referenced_name(arn) is None:
                findings.append(f"{name}: managed policy {arn!r} outside this template")
    return findings


def check_functions_have_own_policies(template: Template) -> list[str]:
    """Each function gets its own role (SAM creates one per function from its Policies): no ``Role`` shared."""
    findings: list[str] = []
    roles: dict[str, str] = {}
    for fn_name, fn in functions(template).items():
        props = fn.get("Properties", {})
        if "Role" in props:
            role = json.dumps(props["Role"], sort_keys=True)
            findings.append(f"{fn_name}: uses an explicit Role instead of its own policies")
            if role in roles:
                findings.append(f"{fn_name}: shares a role with {roles[role]}")
            roles[role] = fn_name
        elif not as_list(props.get("Policies")):
            findings.append(f"{fn_name}: has no Policies of its own")
    return findings


# ---------------------------------------------------------------- HTTP API


def check_cors_without_wildcard(template: Template) -> list[str]:
    """CORS origins come from a parameter (or list) whose value has no ``*``; methods and headers are explicit."""
    findings: list[str] = []
    for name, api in resources(template, "AWS::Serverless::HttpApi").items():
        cors = api.get("Properties", {}).get("CorsConfiguration")
        if cors is None:
            continue
        if not isinstance(cors, dict):
            findings.append(f"{name}: CorsConfiguration {cors!r} allows every origin")
            continue
        origins = parameter_default(template, cors.get("AllowOrigins"))
        origin_values = [o.strip() for o in (origins.split(",") if isinstance(origins, str) else as_list(origins))]
        if not origin_values or not all(isinstance(o, str) and o for o in origin_values):
            findings.append(f"{name}: AllowOrigins must be an explicit list of origins")
        for origin in origin_values:
            if isinstance(origin, str) and "*" in origin:
                findings.append(f"{name}: AllowOrigins contains {origin!r}")
        for key in ("AllowMethods", "AllowHeaders"):
            for literal in strings_in(cors.get(key)):
                if "*" in literal:
                    findings.append(f"{name}: {key} contains {literal!r}")
    return findings


def check_public_routes(template: Template) -> list[str]:
    """Only ``POST /webhooks/stripe`` and ``GET /plans`` answer without a JWT; both must stay reachable."""
    findings: list[str] = []
    public: set[tuple[str, str]] = set()
    for fn_name, event_name, props in http_api_routes(template):
        route = (str(props.get("Method", "")).upper(), str(props.get("Path", "")))
        if (props.get("Auth") or {}).get("Authorizer") == "NONE":
            public.add(route)
            if route not in PUBLIC_ROUTES:
                findings.append(f"{fn_name}.{event_name}: {route[0]} {route[1]} is public")
    for method, path in sorted(PUBLIC_ROUTES - public):
        findings.append(f"{method} {path} must be public (Auth: Authorizer: NONE)")
    return findings


def check_routes_behind_jwt_with_scope(template: Template) -> list[str]:  # noqa: C901 - a flat checklist
    """Every other route is on the template's HttpApi, behind a JWT authorizer (issuer + audience) with a scope."""
    findings: list[str] = []
    apis = resources(template, "AWS::Serverless::HttpApi")
    for name, api in apis.items():
        auth = api.get("Properties", {}).get("Auth") or {}
        if not auth.get("DefaultAuthorizer"):
            findings.append(f"{name}: no DefaultAuthorizer (new routes would be public)")
    for fn_name, event_name, props in http_api_routes(template):
        where = f"{fn_name}.{event_name}"
        route_auth = props.get("Auth") or {}
        if route_auth.get("Authorizer") == "NONE":
            continue  # judged by check_public_routes
        if route_auth.get("Authorizer") == "AWS_IAM":
            # SigV4 from the app's own backends; never a route a browser calls with a user's token.
            if not str(props.get("Path", "")).startswith(SERVICE_ROUTE_PREFIX):
                findings.append(f"{where}: AWS_IAM outside {SERVICE_ROUTE_PREFIX} (user routes need the JWT)")
            if referenced_name(props.get("ApiId")) not in apis:
                findings.append(f"{where}: not attached to the template's HttpApi (SAM would create an open one)")
            continue
        api_name = referenced_name(props.get("ApiId"))
        if api_name not in apis:
            findings.append(f"{where}: not attached to the template's HttpApi (SAM would create an open one)")
            continue
        api_auth = apis[api_name].get("Properties", {}).get("Auth") or {}
        authorizer_name = route_auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
        authorizer = (api_auth.get("Authorizers") or {}).get(authorizer_name) if authorizer_name else None
        if authorizer is None:
            findings.append(f"{where}: no authorizer")
            continue
        jwt = authorizer.get("JwtConfiguration") or {}
        if not jwt.get("issuer") or not as_list(jwt.get("audience")):
            findings.append(f"{where}: authorizer {authorizer_name} is not a JWT authorizer with issuer and audience")
        scopes = route_auth.get("AuthorizationScopes", authorizer.get("AuthorizationScopes"))
        if not as_list(scopes):
            findings.append(f"{where}: no required scope (an ID token would pass)")
    return findings


def check_http_api_throttling_and_access_logs(template: Template) -> list[str]:
    findings: list[str] = []
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for name, api in resources(template, "AWS::Serverless::HttpApi").items():
        props = api.get("Properties", {})
        throttling = props.get("DefaultRouteSettings") or {}
        for key in ("ThrottlingBurstLimit", "ThrottlingRateLimit"):
            if not isinstance(throttling.get(key), int) or throttling[key] <= 0:
                findings.append(f"{name}: DefaultRouteSettings.{key} missing")
        logs = props.get("AccessLogSettings") or {}
        if referenced_name(logs.get("DestinationArn")) not in log_groups:
            findings.append(f"{name}: access logs do not go to a log group of this template")
        if not logs.get("Format"):
            findings.append(f"{name}: access log Format missing")
    return findings


# ---------------------------------------------------------------- queues, logs, data


def check_visibility_timeout(template: Template) -> list[str]:
    """A queue feeding a function keeps messages invisible for at least 6x the function's timeout."""
    findings: list[str] = []
    queues = resources(template, "AWS::SQS::Queue")
    for fn_name, fn in functions(template).items():
        for event_name, event in (fn.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") != "SQS":
                continue
            queue_name = referenced_name((event.get("Properties") or {}).get("Queue"))
            if queue_name not in queues:
                findings.append(f"{fn_name}.{event_name}: queue is not defined in this template")
                continue
            visibility = int(
                queues[queue_name].get("Properties", {}).get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT)
            )
            needed = VISIBILITY_TIMEOUT_FACTOR * function_timeout(template, fn)
            if visibility < needed:
                findings.append(f"{queue_name}: VisibilityTimeout {visibility} < {needed} (6x {fn_name} timeout)")
    return findings


def check_dead_letter_queues(template: Template) -> list[str]:
    """Every redrive target keeps messages for 14 days; every queue with a redrive says after how many receives."""
    findings: list[str] = []
    queues = resources(template, "AWS::SQS::Queue")
    for name, queue in queues.items():
        redrive = queue.get("Properties", {}).get("RedrivePolicy")
        if not redrive:
            continue
        target = referenced_name(redrive.get("deadLetterTargetArn"))
        if "maxReceiveCount" not in redrive:
            findings.append(f"{name}: RedrivePolicy without maxReceiveCount")
        if target not in queues:
            findings.append(f"{name}: dead-letter target is not a queue of this template")
            continue
        retention = queues[target].get("Properties", {}).get("MessageRetentionPeriod")
        if retention != DLQ_RETENTION_SECONDS:
            findings.append(f"{target}: MessageRetentionPeriod {retention} is not 14 days")
    for fn_name, fn in functions(template).items():
        for event_name, event in (fn.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") == "SQS":
                queue_name = referenced_name((event.get("Properties") or {}).get("Queue"))
                if queue_name in queues and not queues[queue_name].get("Properties", {}).get("RedrivePolicy"):
                    findings.append(f"{queue_name}: feeds {fn_name}.{event_name} without a dead-letter queue")
    return findings


def check_log_retention(template: Template) -> list[str]:
    """Every log group expires, and every function logs to one of them (not an auto-created never-expiring one)."""
    findings: list[str] = []
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for name, group in log_groups.items():
        if group.get("Properties", {}).get("RetentionInDays") in (None, ""):
            findings.append(f"{name}: no RetentionInDays")
    for fn_name, fn in functions(template).items():
        target = (fn.get("Properties", {}).get("LoggingConfig") or {}).get("LogGroup")
        if referenced_name(target) not in log_groups:
            findings.append(f"{fn_name}: does not log to a log group with retention")
    return findings


def check_table_protection(template: Template) -> list[str]:
    findings: list[str] = []
    for name, table in resources(template, "AWS::DynamoDB::Table").items():
        props = table.get("Properties", {})
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            findings.append(f"{name}: not on-demand")
        if not (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"):
            findings.append(f"{name}: point-in-time recovery off")
        if not (props.get("SSESpecification") or {}).get("SSEEnabled"):
            findings.append(f"{name}: SSESpecification.SSEEnabled off")
        ttl = props.get("TimeToLiveSpecification") or {}
        if not ttl.get("Enabled") or not ttl.get("AttributeName"):
            findings.append(f"{name}: TTL off")
    return findings


def check_secret_values_absent(template: Template) -> list[str]:
    """Secrets Manager secrets are created empty (values are put after deploy) and no literal looks like a key."""
    findings: list[str] = []
    for name, secret in resources(template, "AWS::SecretsManager::Secret").items():
        if "SecretString" in secret.get("Properties", {}):
            findings.append(f"{name}: SecretString in the template")
    for literal in secret_literals_in(json.dumps(template)):
        findings.append(f"secret-looking literal {literal}")
    return findings


# ---------------------------------------------------------------- runtime and build


def check_runtime_globals(template: Template) -> list[str]:  # noqa: C901 - a flat checklist, one branch per rule
    """Globals pin python3.13 on arm64 with active tracing, explicit timeout/memory and the shared layer;
    no function overrides runtime or architecture."""
    findings: list[str] = []
    glob = globals_function(template)
    if glob.get("Runtime") != RUNTIME:
        findings.append(f"Globals: Runtime {glob.get('Runtime')!r} is not {RUNTIME}")
    if as_list(glob.get("Architectures")) != [ARCHITECTURE]:
        findings.append(f"Globals: Architectures {glob.get('Architectures')!r} is not [{ARCHITECTURE}]")
    if glob.get("Tracing") != "Active":
        findings.append("Globals: Tracing is not Active")
    for key in ("Timeout", "MemorySize"):
        if key not in glob:
            findings.append(f"Globals: {key} not explicit")
    layers = {referenced_name(layer) for layer in as_list(glob.get("Layers"))}
    if not layers & set(resources(template, "AWS::Serverless::LayerVersion")):
        findings.append("Globals: the shared layer is not attached")
    variables = (glob.get("Environment") or {}).get("Variables") or {}
    for variable in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "TABLE_NAME", "STRIPE_SECRET_ARN"):
        if variable not in variables:
            findings.append(f"Globals: environment lacks {variable}")
    for fn_name, fn in functions(template).items():
        props = fn.get("Properties", {})
        if props.get("Runtime", RUNTIME) != RUNTIME:
            findings.append(f"{fn_name}: overrides Runtime")
        if as_list(props.get("Architectures", [ARCHITECTURE])) != [ARCHITECTURE]:
            findings.append(f"{fn_name}: overrides Architectures")
    return findings


def check_layer_build(template: Template) -> list[str]:
    findings: list[str] = []
    layers = resources(template, "AWS::Serverless::LayerVersion")
    if not layers:
        findings.append("no AWS::Serverless::LayerVersion")
    for name, layer in layers.items():
        metadata = layer.get("Metadata") or {}
        if metadata.get("BuildMethod") != RUNTIME:
            findings.append(f"{name}: BuildMethod {metadata.get('BuildMethod')!r} is not {RUNTIME}")
        if metadata.get("BuildArchitecture") != ARCHITECTURE:
            findings.append(f"{name}: BuildArchitecture {metadata.get('BuildArchitecture')!r} is not {ARCHITECTURE}")
        props = layer.get("Properties", {})
        if RUNTIME not in as_list(props.get("CompatibleRuntimes")):
            findings.append(f"{name}: CompatibleRuntimes lacks {RUNTIME}")
        if ARCHITECTURE not in as_list(props.get("CompatibleArchitectures")):
            findings.append(f"{name}: CompatibleArchitectures lacks {ARCHITECTURE}")
    return findings


def check_sqs_event_sources(template: Template) -> list[str]:
    """SQS-fed functions report partial batch failures (one bad record never re-bills its batch) and bound their
    batch size, batching window and concurrency explicitly."""
    findings: list[str] = []
    for fn_name, fn in functions(template).items():
        for event_name, event in (fn.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") != "SQS":
                continue
            where = f"{fn_name}.{event_name}"
            props = event.get("Properties") or {}
            if "ReportBatchItemFailures" not in as_list(props.get("FunctionResponseTypes")):
                findings.append(f"{where}: no ReportBatchItemFailures (a failed record retries the whole batch)")
            for key in ("BatchSize", "MaximumBatchingWindowInSeconds"):
                if key not in props:
                    findings.append(f"{where}: {key} not explicit")
            if not (props.get("ScalingConfig") or {}).get("MaximumConcurrency"):
                findings.append(f"{where}: ScalingConfig.MaximumConcurrency not set")
    return findings


def _alarm_targets(template: Template) -> set[tuple[str, str]]:
    """(metric name, logical id of the dimension's resource) for every alarm."""
    targets: set[tuple[str, str]] = set()
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        props = alarm.get("Properties", {})
        for dimension in as_list(props.get("Dimensions")):
            name = referenced_name(dimension.get("Value"))
            if name:
                targets.add((str(props.get("MetricName")), name))
    return targets


def check_alarms(template: Template) -> list[str]:
    """Every function has an errors alarm; every dead-letter queue a depth alarm; every queue feeding a function an
    age-of-oldest-message alarm; alarms notify the topic when there is one."""
    findings: list[str] = []
    targets = _alarm_targets(template)
    for fn_name in functions(template):
        if ("Errors", fn_name) not in targets:
            findings.append(f"{fn_name}: no Errors alarm")
    queues = resources(template, "AWS::SQS::Queue")
    for name, queue in queues.items():
        redrive = queue.get("Properties", {}).get("RedrivePolicy") or {}
        dlq = referenced_name(redrive.get("deadLetterTargetArn"))
        if dlq and ("ApproximateNumberOfMessagesVisible", dlq) not in targets:
            findings.append(f"{dlq}: no depth alarm")
        if redrive and ("ApproximateAgeOfOldestMessage", name) not in targets:
            findings.append(f"{name}: no age-of-oldest-message alarm")
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        if "AlarmActions" not in alarm.get("Properties", {}):
            findings.append(f"{name}: no AlarmActions")
    return findings


def _statements_of(fn: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        st
        for policy in as_list(fn.get("Properties", {}).get("Policies"))
        if isinstance(policy, dict)
        for st in as_list(policy.get("Statement"))
        if isinstance(st, dict)
    ]


def _actions(statement: Mapping[str, Any]) -> list[str]:
    return [a for a in as_list(statement.get("Action")) if isinstance(a, str)]


def check_domain_events_from_the_stream(template: Template) -> list[str]:  # noqa: C901 - a flat checklist
    """Domain events come from the table's stream: the table streams new and old images; one explicit event source
    mapping (no SAM stream event, whose managed policy grants every stream) feeds the publisher with partial batch
    responses, bisect, bounded retries, a maximum record age and an on-failure queue that has a depth alarm; only
    the publisher may put events on the bus, and only on this stack's bus; the webhook has no EventBridge permission."""
    findings: list[str] = []
    table = resources(template, "AWS::DynamoDB::Table").get("BillingTable", {}).get("Properties", {})
    if (table.get("StreamSpecification") or {}).get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        findings.append("BillingTable: no NEW_AND_OLD_IMAGES stream")
    mappings = [
        r.get("Properties", {})
        for r in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if "StreamArn" in json.dumps(r.get("Properties", {}).get("EventSourceArn"))
    ]
    if len(mappings) != 1:
        findings.append(f"{len(mappings)} stream event source mappings (expected 1, to the publisher)")
    for props in mappings:
        # The publisher itself or its live alias (``!Ref PublisherFunction.Alias`` when versions are published)
        if referenced_name(props.get("FunctionName")) not in ("PublisherFunction", "PublisherFunction.Alias"):
            findings.append("the stream mapping does not feed PublisherFunction")
        if "ReportBatchItemFailures" not in as_list(props.get("FunctionResponseTypes")):
            findings.append("stream mapping without partial batch responses")
        if props.get("BisectBatchOnFunctionError") is not True:
            findings.append("stream mapping does not bisect on error")
        retries = props.get("MaximumRetryAttempts")
        if not isinstance(retries, int) or not 0 <= retries <= 100:
            findings.append(f"stream mapping retries unbounded or unusual: {retries!r}")
        if not isinstance(props.get("MaximumRecordAgeInSeconds"), int):
            findings.append("stream mapping without MaximumRecordAgeInSeconds")
        destination = referenced_name(
            ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        )
        if destination not in resources(template, "AWS::SQS::Queue"):
            findings.append("stream mapping without an SQS on-failure destination")
        elif ("ApproximateNumberOfMessagesVisible", destination) not in _alarm_targets(template):
            findings.append(f"{destination}: no depth alarm")
    for fn_name, fn in functions(template).items():
        for event in (fn.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") in ("DynamoDB", "Kinesis"):
                findings.append(f"{fn_name}: a SAM stream event (attaches a managed policy with Resource '*')")
        puts = [st for st in _statements_of(fn) if "events:PutEvents" in _actions(st)]
        if puts and fn_name != "PublisherFunction":
            findings.append(f"{fn_name}: may put events on the bus (only the publisher does)")
        for st in puts:
            if referenced_name(st.get("Resource")) != "BillingEventBus":
                findings.append(f"{fn_name}: events:PutEvents not scoped to BillingEventBus")
        if fn_name == "WebhookFunction" and any(
            a.startswith("events:") for st in _statements_of(fn) for a in _actions(st)
        ):
            findings.append("WebhookFunction: has an EventBridge permission")
    return findings


REQUIRED_OUTPUTS = frozenset(
    {
        "ApiUrl",
        "WebhookUrl",
        "UsageQueueUrl",
        "UsageQueueArn",
        "TableName",
        "StripeSecretArn",
        "EventBusName",
        "StripeProvisioning",
    }
)


def check_outputs(template: Template) -> list[str]:
    """What an operator needs after deploy: the API and webhook URLs, queue, table, secret, bus, user pool ids."""
    outputs = template.get("Outputs", {})
    findings = [f"output {name} missing" for name in sorted(REQUIRED_OUTPUTS - set(outputs))]
    if resources(template, "AWS::Cognito::UserPool"):
        findings += [f"output {n} missing" for n in ("UserPoolId", "UserPoolClientId") if n not in outputs]
    webhook = str((outputs.get("WebhookUrl") or {}).get("Value", ""))
    if "/webhooks/stripe" not in webhook:
        findings.append("output WebhookUrl does not end at the webhook route")
    return findings


# ---------------------------------------------------------------- Stripe set up as code

PROVISIONING_TYPE = "Custom::StripeProvisioning"
PROVISIONER_ACTIONS = frozenset({"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"})
# What the custom resource must receive: the very template values the functions read.
PROVISIONING_INPUTS = {
    "PlanCatalog": {"Ref": "PlanCatalog"},
    "UsageMeterEventNames": {"Ref": "UsageMeterEventNames"},
    "PortalReturnUrl": {"Ref": "PortalReturnUrl"},
    "Owner": {"Ref": "AWS::StackName"},
}


def _function_actions(fn: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for policy in as_list(fn.get("Properties", {}).get("Policies")):
        if isinstance(policy, dict):
            for statement in as_list(policy.get("Statement")):
                actions |= {str(a) for a in as_list(statement.get("Action"))}
    return actions


def check_stripe_provisioning(template: Template) -> list[str]:
    """Stripe is provisioned inside the deployment by one custom resource whose function belongs to this template,
    fed the same catalog, meters and URLs the functions use; that function may only read and write the Stripe
    secret, and no other function may write it."""
    findings: list[str] = []
    provisioning = resources(template, PROVISIONING_TYPE)
    if len(provisioning) != 1:
        return [f"expected one {PROVISIONING_TYPE}, found {len(provisioning)}"]
    [(name, resource)] = provisioning.items()
    props = resource.get("Properties", {})
    token = props.get("ServiceToken")
    provisioner = referenced_name(token)
    fns = functions(template)
    if provisioner not in fns or "Fn::GetAtt" not in (token or {}):
        return [f"{name}: ServiceToken is not a function of this template"]
    for key, expected in PROVISIONING_INPUTS.items():
        if props.get(key) != expected:
            findings.append(f"{name}: {key} is not {expected}")
    webhook_output = (template.get("Outputs", {}).get("WebhookUrl") or {}).get("Value")
    if props.get("WebhookUrl") != webhook_output:
        findings.append(f"{name}: WebhookUrl differs from the WebhookUrl output")
    extra = _function_actions(fns[provisioner]) - PROVISIONER_ACTIONS
    if extra:
        findings.append(f"{provisioner}: actions beyond the Stripe secret: {sorted(extra)}")
    for fn_name, fn in fns.items():
        if fn_name != provisioner and "secretsmanager:PutSecretValue" in _function_actions(fn):
            findings.append(f"{fn_name}: may write the Stripe secret (only {provisioner} may)")
    return findings


ALL_CHECKS: tuple[Check, ...] = (
    check_no_wildcard_iam,
    check_functions_have_own_policies,
    check_cors_without_wildcard,
    check_public_routes,
    check_routes_behind_jwt_with_scope,
    check_http_api_throttling_and_access_logs,
    check_visibility_timeout,
    check_dead_letter_queues,
    check_log_retention,
    check_table_protection,
    check_secret_values_absent,
    check_runtime_globals,
    check_layer_build,
    check_sqs_event_sources,
    check_alarms,
    check_outputs,
    check_domain_events_from_the_stream,
    check_stripe_provisioning,
)
