"""Template parameter overrides for the local stack, checked as a deploy checks them.

``DEVSTACK_PARAMS="PlanCatalog='{...}' PastDueGraceDays=3"`` (shell-quoted ``Name=Value`` pairs, the form of
``sam deploy --parameter-overrides``) and/or ``DEVSTACK_PARAMS_FILE=path`` (the same pairs one per line, ``#``
comments allowed, or a JSON object) set parameters of template.yaml for ``make dev``. Two checks, both before
anything starts:

1. CloudFormation's own (:func:`parameter_problems`): the name is a parameter of the template, and the value fits
   its ``Type`` (``Number``), ``AllowedValues``, ``AllowedPattern``, ``MinValue``/``MaxValue`` and
   ``MinLength``/``MaxLength``, exactly what ``sam deploy`` would refuse;
2. the product's (:func:`settings_problems`): each function's environment, resolved from the template, parsed by
   ``tollgate.config.Settings`` in a child process with the layer on its path, as the function's cold start would.
   A value CloudFormation accepts but the functions cannot use (``PlanCatalog='not json'``) stops the start here
   instead of failing every request.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.template import ROOT

LAYER_DIR = ROOT / "layers" / "common"

#: Run in a child with the layer on sys.path: devstack never imports the product in its own process.
_SETTINGS_CHECK = """
import json, sys
from tollgate.config import Settings
from tollgate.errors import ConfigurationError
problems = {}
for name, environment in json.load(sys.stdin).items():
    try:
        Settings.from_environment(environment)
    except ConfigurationError as exc:
        problems[name] = str(exc)
json.dump(problems, sys.stdout)
"""


class InvalidParameters(ValueError):
    """One line per problem, each naming the parameter."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_pairs(text: str, source: str) -> dict[str, str]:
    """``Name=Value`` pairs, shell-quoted (``sam deploy --parameter-overrides`` syntax)."""
    pairs: dict[str, str] = {}
    try:
        words = shlex.split(text, comments=True)
    except ValueError as exc:
        raise InvalidParameters([f"{source}: cannot be read ({exc})"]) from None
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise InvalidParameters([f"{source}: {word!r} is not Name=Value"])
        pairs[name] = value
    return pairs


def read_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """The overrides ``DEVSTACK_PARAMS_FILE`` and then ``DEVSTACK_PARAMS`` give (the variable wins)."""
    overrides: dict[str, str] = {}
    path = environ.get("DEVSTACK_PARAMS_FILE", "").strip()
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidParameters([f"DEVSTACK_PARAMS_FILE: cannot read {path} ({exc.strerror})"]) from None
        overrides |= _from_file(text, "DEVSTACK_PARAMS_FILE")
    overrides |= parse_pairs(environ.get("DEVSTACK_PARAMS", ""), "DEVSTACK_PARAMS")
    return overrides


def _from_file(text: str, source: str) -> dict[str, str]:
    if not text.lstrip().startswith("{"):
        return parse_pairs(text, source)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameters([f"{source}: not valid JSON ({exc.msg})"]) from None
    if not isinstance(document, dict):
        raise InvalidParameters([f"{source}: a JSON file must hold an object of Name: value"])
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in document.items()}


def parameter_problems(template: Mapping[str, Any], overrides: Mapping[str, str]) -> list[str]:
    """What CloudFormation would refuse in these overrides, one line per problem."""
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    problems: list[str] = []
    for name, value in overrides.items():
        spec = declared.get(name)
        if spec is None:
            close = [p for p in declared if p.lower() == name.lower()]
            hint = f" (did you mean {close[0]}?)" if close else f"; parameters: {', '.join(declared)}"
            problems.append(f"{name}: not a parameter of template.yaml{hint}")
            continue
        problems += [f"{name}: {problem}" for problem in _value_problems(spec, value)]
    return problems


def _value_problems(spec: Mapping[str, Any], value: str) -> list[str]:
    kind = spec.get("Type", "String")
    items = [v.strip() for v in value.split(",")] if kind == "CommaDelimitedList" else [value]
    problems: list[str] = []
    for item in items:
        if kind == "Number":
            problems += _number_problems(spec, item)
        allowed = spec.get("AllowedValues")
        if allowed is not None and item not in {str(a) for a in allowed}:
            problems.append(f"{item!r} is not one of {', '.join(str(a) for a in allowed)}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(str(pattern), item) is None:
            problems.append(f"{item!r} does not match {pattern}")
    length = len(value)
    if "MinLength" in spec and length < int(spec["MinLength"]):
        problems.append(f"shorter than {spec['MinLength']} characters")
    if "MaxLength" in spec and length > int(spec["MaxLength"]):
        problems.append(f"longer than {spec['MaxLength']} characters")
    return problems


def _number_problems(spec: Mapping[str, Any], item: str) -> list[str]:
    try:
        number = float(item)
    except ValueError:
        return [f"{item!r} is not a number"]
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return [f"{item} is below the minimum {spec['MinValue']}"]
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return [f"{item} is above the maximum {spec['MaxValue']}"]
    return []


def variables_from_parameters(template: Mapping[str, Any]) -> dict[str, str]:
    """Environment variable -> the parameter it is ``!Ref``-ed from (Globals and every function)."""
    sources = [((template.get("Globals") or {}).get("Function") or {}).get("Environment")]
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            sources.append((resource.get("Properties") or {}).get("Environment"))
    mapping: dict[str, str] = {}
    for environment in sources:
        for variable, value in ((environment or {}).get("Variables") or {}).items():
            if isinstance(value, dict) and isinstance(value.get("Ref"), str):
                mapping[variable] = value["Ref"]
    return mapping


def settings_problems(template: Mapping[str, Any], environments: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What each function's cold start would refuse in its environment, naming the parameter behind a variable."""
    answer = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", _SETTINGS_CHECK],
        input=json.dumps({name: dict(env) for name, env in environments.items()}),
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(LAYER_DIR), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    if answer.returncode != 0:
        return [f"the functions' settings could not be checked: {answer.stderr.strip()[-500:]}"]
    parameters = variables_from_parameters(template)
    problems: set[str] = set()
    for message in json.loads(answer.stdout).values():
        for part in message.removeprefix("invalid configuration: ").split("; "):
            variable = part.split(":", 1)[0].split(".", 1)[0].strip()
            parameter = parameters.get(variable)
            problems.add(f"{parameter} ({part})" if parameter else part)
    return sorted(problems)
