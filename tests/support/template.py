"""Reading template.yaml the way CloudFormation does: short-form intrinsics (!Ref, !GetAtt, !Sub ...) become
their long forms, so tests can inspect resources without the SAM CLI's environment."""

from __future__ import annotations

from typing import Any

# One CloudFormation-aware reader for tests and the local stack: devstack builds its resources with it.
from devstack.template import (
    ROOT,
    TEMPLATE_PATH,
    load_template,
    load_template_text,
    resources_of_type,
)

__all__ = [
    "ROOT",
    "TEMPLATE_PATH",
    "load_template",
    "load_template_text",
    "resources_of_type",
    "stream_mapping_properties",
    "table_definition",
    "ttl_attribute",
]


def table_definition(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The BillingTable's key schema as create_table arguments (what a moto table in tests is built from)."""
    props = (template or load_template())["Resources"]["BillingTable"]["Properties"]
    definition = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    stream = props.get("StreamSpecification")
    if stream:
        definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return definition


def stream_mapping_properties(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The publisher's event source mapping, as the template writes it (what the stream poller is built from)."""
    [mapping] = [
        r["Properties"]
        for r in resources_of_type(template or load_template(), "AWS::Lambda::EventSourceMapping").values()
        if r["Properties"].get("FunctionName") == {"Ref": "PublisherFunction.Alias"}
    ]
    return dict(mapping)


def ttl_attribute(template: dict[str, Any] | None = None) -> str:
    props = (template or load_template())["Resources"]["BillingTable"]["Properties"]
    return str(props["TimeToLiveSpecification"]["AttributeName"])
