"""Template parameter overrides for `make dev` (DEVSTACK_PARAMS / DEVSTACK_PARAMS_FILE): read like
`sam deploy --parameter-overrides`, checked like a deploy and like each function's cold start, and a bad value stops
the start naming the parameter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.parameters import (
    InvalidParameters,
    parameter_problems,
    parse_pairs,
    read_overrides,
    settings_problems,
    variables_from_parameters,
)
from devstack.stack import LocalStack, StackConfig
from devstack.template import ROOT, load_template

TEMPLATE = load_template()


def test_pairs_are_read_with_shell_quoting_as_sam_reads_them() -> None:
    # Given the --parameter-overrides form, a value with spaces and JSON quoted
    text = """Stage=staging PlanCatalog='{"plans": []}' AllowedOrigins="http://a.test, http://b.test" """
    # Then each pair keeps its whole value
    assert parse_pairs(text, "DEVSTACK_PARAMS") == {
        "Stage": "staging",
        "PlanCatalog": '{"plans": []}',
        "AllowedOrigins": "http://a.test, http://b.test",
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("Stage", "'Stage' is not Name=Value"), ("=dev", "'=dev' is not Name=Value"), ("Stage='dev", "cannot be read")],
)
def test_unreadable_pairs_are_refused_naming_the_source(text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameters) as refused:
        parse_pairs(text, "DEVSTACK_PARAMS")
    [problem] = refused.value.problems
    assert problem.startswith("DEVSTACK_PARAMS: ")
    assert fragment in problem


def test_a_file_of_pairs_or_json_is_read_and_the_variable_wins(tmp_path: Path) -> None:
    # Given a pairs file with a comment, and a JSON file whose non-string values are written as JSON
    pairs = tmp_path / "dev.params"
    pairs.write_text("# local settings\nStage=staging\nUsageDriftDaysBack=5\n")
    document = tmp_path / "dev.json"
    document.write_text(json.dumps({"UsageDriftDaysBack": 9, "PlanCatalog": {"plans": []}}))
    # When both the file and the variable set a parameter
    from_pairs = read_overrides({"DEVSTACK_PARAMS_FILE": str(pairs), "DEVSTACK_PARAMS": "Stage=prod"})
    from_json = read_overrides({"DEVSTACK_PARAMS_FILE": str(document)})
    # Then the variable wins, and JSON values become the strings CloudFormation would get
    assert from_pairs == {"Stage": "prod", "UsageDriftDaysBack": "5"}
    assert from_json == {"UsageDriftDaysBack": "9", "PlanCatalog": '{"plans": []}'}


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameters, match=r"DEVSTACK_PARAMS_FILE: cannot read .*nowhere\.params"):
        read_overrides({"DEVSTACK_PARAMS_FILE": str(tmp_path / "nowhere.params")})


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"Stgae": "dev"}, "Stgae: not a parameter of template.yaml; parameters: Stage,"),
        ({"stage": "dev"}, "stage: not a parameter of template.yaml (did you mean Stage?)"),
        ({"Stage": "qa"}, "Stage: 'qa' is not one of dev, staging, prod"),
        ({"UsageDriftDaysBack": "soon"}, "UsageDriftDaysBack: 'soon' is not a number"),
        ({"UsageDriftDaysBack": "36"}, "UsageDriftDaysBack: 36 is above the maximum 35"),
        ({"UsageDriftDaysBack": "0"}, "UsageDriftDaysBack: 0 is below the minimum 1"),
        ({"AllowIncompleteAccess": "yes"}, "AllowIncompleteAccess: 'yes' is not one of false, true"),
    ],
)
def test_cloudformation_rules_refuse_what_a_deploy_would(overrides: dict[str, str], problem: str) -> None:
    problems = parameter_problems(TEMPLATE, overrides)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_control_values_a_deploy_accepts_pass_the_rules() -> None:
    accepted = {"Stage": "staging", "UsageDriftDaysBack": "35", "AllowIncompleteAccess": "true"}
    assert parameter_problems(TEMPLATE, accepted) == []


def test_a_value_cloudformation_accepts_but_the_functions_cannot_parse_names_its_parameter() -> None:
    # Given PlanCatalog (a String: any value fits CloudFormation) set to something that is not JSON
    assert parameter_problems(TEMPLATE, {"PlanCatalog": "not json"}) == []
    assert variables_from_parameters(TEMPLATE)["PLAN_CATALOG"] == "PlanCatalog"
    # When each function's environment is checked as its cold start parses it
    problems = settings_problems(TEMPLATE, {"CheckoutFunction": {"PLAN_CATALOG": "not json", "STAGE": "dev"}})
    # Then the problem names the parameter behind the variable
    assert any(p.startswith("PlanCatalog (PLAN_CATALOG") for p in problems), problems


def run_devstack(params: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DEVSTACK_PARAMS": params}
    environment.pop("DEVSTACK_PARAMS_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "devstack", "--api-port", "0", "--stripe-port", "0", "--aws-port", "0"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ("UsageDriftDaysBack=soon", "UsageDriftDaysBack: 'soon' is not a number"),
        ("PlanCatalog='not json'", "PlanCatalog ("),
    ],
)
def test_an_invalid_override_stops_make_dev_with_its_name(params: str, named: str) -> None:
    # When the local stack starts with an override a deploy (or the functions' cold start) would refuse
    result = run_devstack(params)
    # Then it stops with exit code 2 and a line naming the parameter, and never prints the "is up" banner
    assert result.returncode == 2, result.stderr[-2000:]
    assert "the local stack did not start: invalid template parameters" in result.stderr
    assert named in result.stderr
    assert "local stack is up" not in result.stdout


@pytest.mark.e2e
def test_control_a_valid_override_reaches_the_functions() -> None:
    # Given an override of a parameter the functions read
    stack = LocalStack(
        StackConfig(state_dir=None, parameter_overrides={"UsageDriftDaysBack": "9"}, start_pollers=False)
    )
    # When the stack starts
    stack.start()
    try:
        assert stack.functions is not None
        # Then it started, and the function that reads the parameter got its value
        environment = stack.functions.pools["UsageDriftFunction"].environment
        assert environment["USAGE_DRIFT_DAYS_BACK"] == "9"
    finally:
        stack.stop()
