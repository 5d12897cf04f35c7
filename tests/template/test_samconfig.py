"""samconfig.toml: three environments whose parameter overrides are parameters the template accepts, and which
keep the template's rules (no CORS wildcard, a Checkout success URL carrying the session id)."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from tests.support.template import ROOT, load_template
from tests.template import rules

ENVIRONMENTS = {"default": "dev", "staging": "staging", "prod": "prod"}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def overrides(samconfig: dict[str, Any], env: str) -> dict[str, str]:
    entries = samconfig[env]["deploy"]["parameters"]["parameter_overrides"]
    pairs = [entry.split("=", 1) for entry in entries]
    assert all(len(pair) == 2 for pair in pairs), entries
    return dict(pairs)  # type: ignore[arg-type]


def with_overrides(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template as deployed with these overrides: each overridden parameter's default replaced."""
    deployed = copy.deepcopy(template)
    for name, value in values.items():
        deployed["Parameters"][name]["Default"] = value
    return deployed


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_builds_cached_in_parallel_and_lints_on_validate(samconfig: dict[str, Any], env: str) -> None:
    section = samconfig[env]
    assert section["build"]["parameters"] == {"cached": True, "parallel": True}
    assert section["validate"]["parameters"]["lint"] is True
    deploy = section["deploy"]["parameters"]
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["resolve_s3"] is True
    assert section["global"]["parameters"]["stack_name"] == f"tollgate-{ENVIRONMENTS[env]}"


def test_only_prod_deploys_wait_for_a_human(samconfig: dict[str, Any]) -> None:
    assert {env: samconfig[env]["deploy"]["parameters"]["confirm_changeset"] for env in ENVIRONMENTS} == {
        "default": False,
        "staging": False,
        "prod": True,
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overrides_are_valid_template_parameters(samconfig: dict[str, Any], env: str) -> None:
    # Given the environment's parameter overrides
    values = overrides(samconfig, env)
    parameters = load_template()["Parameters"]
    # Then each names a template parameter, respects its allowed values, and the stage matches the environment
    assert set(values) <= set(parameters)
    for name, value in values.items():
        allowed = parameters[name].get("AllowedValues")
        assert allowed is None or value in [str(a) for a in allowed], (name, value)
    assert values["Stage"] == ENVIRONMENTS[env]
    assert "{CHECKOUT_SESSION_ID}" in values["CheckoutSuccessUrl"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deployed_template_keeps_cors_closed(samconfig: dict[str, Any], env: str) -> None:
    deployed = with_overrides(load_template(), overrides(samconfig, env))
    assert rules.check_cors_without_wildcard(deployed) == []


def test_control_an_override_opening_cors_is_caught(samconfig: dict[str, Any]) -> None:
    # Control: the same check on an override of AllowedOrigins=* reports it
    values = overrides(samconfig, "prod") | {"AllowedOrigins": "*"}
    assert rules.check_cors_without_wildcard(with_overrides(load_template(), values))
