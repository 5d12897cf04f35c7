"""AWS stand-ins on a moto server, created from template.yaml's own resource definitions.

Each resource type the product touches at run time has a small creator that passes the template's (resolved)
properties to the matching AWS API, so a change to the template is a change to the local stack. Types with no local
behaviour (log groups, alarms, IAM policies, the serverless functions, layer and API themselves) get a reference
value only, so intrinsics pointing at them still resolve.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from devstack.template import Resolver

# Client-side settings for talking to the local moto server.
LOCAL_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=30)
FAKE_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """moto's server in its own process, so test code using in-process ``mock_aws`` can never reset its state."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the AWS stand-ins bind to loopback only")
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_seconds: float = 30.0) -> str:
        script = (
            "import sys, threading\n"
            "from moto.server import ThreadedMotoServer\n"
            "server = ThreadedMotoServer(ip_address=sys.argv[1], port=int(sys.argv[2]), verbose=False)\n"
            "server.start()\n"
            "sys.stdin.read()  # until the parent closes stdin or dies\n"
            "server.stop()\n"
        )
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", script, self.host, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the stack, which stops moto last
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode} (port {self.port} in use?)")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1):  # noqa: S310
                    return self.endpoint
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto server did not start in time")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


ClientFactory = Callable[[str], Any]


def local_clients(endpoint: str, region: str) -> ClientFactory:
    def client(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name=region,
            config=LOCAL_CLIENT_CONFIG,
            **FAKE_CREDENTIALS,
        )

    return client


@dataclass
class CreatedResource:
    logical_id: str
    type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    local: bool = True  # False: only a reference value, nothing runs locally


# ---- dependency order -----------------------------------------------------------------------------------


def _references(value: Any, logical_ids: set[str]) -> set[str]:
    """The logical ids that `value` refers to (Ref, GetAtt, Sub), at any depth."""
    if isinstance(value, list):
        return set().union(*(_references(item, logical_ids) for item in value))
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, arg in value.items():
        if key == "Ref":
            found |= {arg} & logical_ids if isinstance(arg, str) else _references(arg, logical_ids)
        elif key == "Fn::GetAtt":
            found |= {arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]} & logical_ids
        elif key == "Fn::Sub":
            found |= _sub_references(arg, logical_ids)
        else:
            found |= _references(arg, logical_ids)
    return found


def _sub_references(arg: Any, logical_ids: set[str]) -> set[str]:
    text = arg if isinstance(arg, str) else arg[0]
    names = {name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!][^}]*)\}", text)} & logical_ids
    return names if isinstance(arg, str) else names | _references(arg[1], logical_ids)


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    ids = set(resources)
    deps = {lid: _references(spec.get("Properties") or {}, ids) - {lid} for lid, spec in resources.items()}
    order: list[str] = []
    pending = dict(deps)
    while pending:
        ready = sorted(lid for lid, d in pending.items() if d <= set(order))
        if not ready:
            raise ValueError(f"circular references between {sorted(pending)}")
        order.extend(ready)
        for lid in ready:
            del pending[lid]
    return order


# ---- creators ---------------------------------------------------------------------------------------------


def _physical_name(resolver: Resolver, logical_id: str) -> str:
    # CloudFormation names unnamed resources "<stack>-<LogicalId>-<random>"; locally the suffix is dropped.
    return f"{resolver.stack_name}-{logical_id}"


def _table(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    dynamodb = clients("dynamodb")
    name = props.get("TableName") or _physical_name(resolver, lid)
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if key in props:
            args[key] = props[key]
    if "StreamSpecification" in props:
        # CloudFormation enables the stream by naming its view type; the DynamoDB API wants it said.
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if "DeletionProtectionEnabled" in props:
        args["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
    table = dynamodb.create_table(**args)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attributes["StreamArn"] = table["LatestStreamArn"]
    return CreatedResource(lid, "AWS::DynamoDB::Table", name, attributes)


def _queue(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    sqs = clients("sqs")
    name = props.get("QueueName") or _physical_name(resolver, lid)
    attributes: dict[str, str] = {}
    for key, value in props.items():
        if key in ("QueueName", "Tags"):
            continue
        if isinstance(value, dict):
            attributes[key] = json.dumps(value)
        elif isinstance(value, bool):
            attributes[key] = "true" if value else "false"
        else:
            attributes[key] = str(value)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return CreatedResource(lid, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _secret(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    # Created empty, as a deploy does; the local stack then puts development values, as an operator would.
    name = props.get("Name") or _physical_name(resolver, lid)
    args: dict[str, Any] = {"Name": name}
    if props.get("Description"):
        args["Description"] = props["Description"]
    arn = clients("secretsmanager").create_secret(**args)["ARN"]
    return CreatedResource(lid, "AWS::SecretsManager::Secret", arn, {"Id": arn})


def _event_bus(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    name = props.get("Name") or _physical_name(resolver, lid)
    source = props.get("EventSourceName")
    if source:
        # A partner event bus (named after its partner source, "aws.partner/..."): moto looks buses up by the last
        # path segment of a name or ARN, so it holds the bus under that segment; callers use the full name.
        arn = clients("events").create_event_bus(Name=name.rsplit("/", 1)[-1], EventSourceName=source)["EventBusArn"]
    else:
        arn = clients("events").create_event_bus(Name=name)["EventBusArn"]
    return CreatedResource(lid, "AWS::Events::EventBus", name, {"Arn": arn, "Name": name})


def _event_rule(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    events = clients("events")
    name = props.get("Name") or _physical_name(resolver, lid)
    bus = props.get("EventBusName") or "default"
    arn = events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps(props["EventPattern"]),
        State=props.get("State", "ENABLED"),
        Description=props.get("Description", ""),
    )["RuleArn"]
    targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets") or []]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return CreatedResource(lid, "AWS::Events::Rule", arn, {"Arn": arn})


def _event_archive(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    name = props.get("ArchiveName") or _physical_name(resolver, lid)
    arn = clients("events").create_archive(
        ArchiveName=name, EventSourceArn=props["SourceArn"], RetentionDays=int(props.get("RetentionDays", 0))
    )["ArchiveArn"]
    return CreatedResource(lid, "AWS::Events::Archive", name, {"Arn": arn})


def _queue_policy(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    sqs = clients("sqs")
    for url in props.get("Queues") or []:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    return CreatedResource(lid, "AWS::SQS::QueuePolicy", _physical_name(resolver, lid))


_USER_POOL_PROPERTIES = (
    "UsernameAttributes",
    "AutoVerifiedAttributes",
    "MfaConfiguration",
    "Policies",
    "AliasAttributes",
    "Schema",
    "AccountRecoverySetting",
    "AdminCreateUserConfig",
)


def _user_pool(clients: ClientFactory, resolver: Resolver, lid: str, props: dict[str, Any]) -> CreatedResource:
    args = {k: props[k] for k in _USER_POOL_PROPERTIES if k in props}
    pool = clients("cognito-idp").create_user_pool(
        PoolName=props.get("UserPoolName") or _physical_name(resolver, lid), **args
    )["UserPool"]
    provider = f"cognito-idp.{resolver.region}.amazonaws.com/{pool['Id']}"
    return CreatedResource(lid, "AWS::Cognito::UserPool", pool["Id"], {"Arn": pool["Arn"], "ProviderName": provider})


_USER_POOL_CLIENT_PROPERTIES = (
    "GenerateSecret",
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "ReadAttributes",
    "WriteAttributes",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "CallbackURLs",
)


def _user_pool_client(
    clients: ClientFactory,
    resolver: Resolver,  # noqa: ARG001 - every creator takes the same arguments
    lid: str,
    props: dict[str, Any],
) -> CreatedResource:
    args = {k: props[k] for k in _USER_POOL_CLIENT_PROPERTIES if k in props}
    client = clients("cognito-idp").create_user_pool_client(
        UserPoolId=props["UserPoolId"], ClientName=props.get("ClientName") or lid, **args
    )["UserPoolClient"]
    return CreatedResource(lid, "AWS::Cognito::UserPoolClient", client["ClientId"])


Creator = Callable[[ClientFactory, Resolver, str, dict[str, Any]], CreatedResource]

CREATORS: dict[str, Creator] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::SQS::Queue": _queue,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Events::EventBus": _event_bus,
    "AWS::Events::Rule": _event_rule,
    "AWS::Events::Archive": _event_archive,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
}


def _reference_only(resolver: Resolver, lid: str, spec: Mapping[str, Any]) -> CreatedResource:
    """A value for !Ref/!GetAtt of a resource that has no local behaviour."""
    kind = str(spec.get("Type"))
    props = spec.get("Properties") or {}
    service = kind.split("::")[1].lower() if "::" in kind else "local"
    arn = f"arn:aws:{service}:{resolver.region}:{resolver.account_id}:{lid}"
    ref: Any = arn
    if kind == "AWS::Serverless::Function":
        ref = resolver.resolve(props.get("FunctionName")) or _physical_name(resolver, lid)
        arn = f"arn:aws:lambda:{resolver.region}:{resolver.account_id}:function:{ref}"
    elif kind == "AWS::Serverless::HttpApi":
        ref = "localapi"
    return CreatedResource(lid, kind, ref, {"Arn": arn}, local=False)


def after_custom_resources(resources: Mapping[str, Any]) -> set[str]:
    """The resources that need a custom resource's results first (directly or through another resource), e.g. the
    partner event buses named after the sources Stripe provisioning created."""
    ids = set(resources)
    later = {lid for lid, spec in resources.items() if str(spec.get("Type", "")).startswith("Custom::")}
    deferred: set[str] = set()
    grew = True
    while grew:
        grew = False
        for lid, spec in resources.items():
            if lid in deferred or lid in later or str(spec.get("Type", "")).startswith("AWS::Serverless::Function"):
                continue  # functions read such values from their environment, refreshed after provisioning
            if _references(spec.get("Properties") or {}, ids) & (later | deferred):
                deferred.add(lid)
                grew = True
    return deferred


def _awaited_attributes(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A custom resource's attributes read "" until it answered: functions are described before provisioning
    runs (the local stack gives them the real values afterwards, as CloudFormation orders them after it)."""
    text = json.dumps(template)
    names = set(re.findall(rf'"Fn::GetAtt": \["{logical_id}", "(\w+)"\]', text))
    names |= set(re.findall(rf"\$\{{{logical_id}\.(\w+)\}}", text))
    return dict.fromkeys(names - {"Arn"}, "")


def create_from_template(
    resolver: Resolver, clients: ClientFactory, *, skip: set[str] | None = None, only: set[str] | None = None
) -> dict[str, CreatedResource]:
    """Create every resource of the template that the product uses at run time, in dependency order (``skip``:
    not now; ``only``: just these, after the rest exists)."""
    resources = resolver.template["Resources"]
    created: dict[str, CreatedResource] = {}
    for lid in creation_order(resources):
        spec = resources[lid]
        if not resolver.resource_enabled(lid) or lid in (skip or set()) or (only is not None and lid not in only):
            continue
        creator = CREATORS.get(str(spec.get("Type")))
        if creator is None:
            result = _reference_only(resolver, lid, spec)
            if str(spec.get("Type", "")).startswith("Custom::"):
                result.attributes.update(_awaited_attributes(resolver.template, lid))
        else:
            props = resolver.resolve(spec.get("Properties") or {})
            result = creator(clients, resolver, lid, props)
        created[lid] = result
        resolver.refs[lid] = result.ref
        for name, value in result.attributes.items():
            resolver.attributes[(lid, name)] = value
    return created
