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
    "table_definition",
    "ttl_attribute",
]


def table_definition(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The BillingTable's key schema as create_table arguments (what a moto table in tests is built from)."""
    props = (template or load_template())["Resources"]["BillingTable"]["Properties"]
    return {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }


def ttl_attribute(template: dict[str, Any] | None = None) -> str:
    props = (template or load_template())["Resources"]["BillingTable"]["Properties"]
    return str(props["TimeToLiveSpecification"]["AttributeName"])
