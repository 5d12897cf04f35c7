"""Reading template.yaml the way CloudFormation does: short-form intrinsics (!Ref, !GetAtt, !Sub ...) become
their long forms, so tests can inspect resources without the SAM CLI's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


def load_template_text(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=_CfnLoader)


def resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == type_name}


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
