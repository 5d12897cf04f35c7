"""The template's alarms and dashboard name the metrics the code emits, and the dashboard shows all of them.

"Emitted" is read from the code itself: every ``MetricName.X`` the layer and the functions reference (an
``add_metric`` with a string literal is refused, so no name escapes the list). "Named by the template" is every
alarm in the product's namespace and every product metric in the dashboard body. Each check has a control: the
same check on a template or source broken the way it guards against.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import ROOT, load_template
from tests.template import rules
from tollgate.observability import MetricName

Template = dict[str, Any]
NAMESPACE = "Tollgate"
SOURCES = [ROOT / "layers/common/tollgate", ROOT / "functions"]
#: What the issue asks to be alarmed on, as (namespace, metric).
REQUIRED_ALARMS = {
    ("Tollgate", "WebhookSignatureFailed"),
    ("Tollgate", "WebhookLagSeconds"),
    ("Tollgate", "UsageDrift"),
    ("AWS/Lambda", "IteratorAge"),
    ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
}
GOLDEN_SIGNALS = ("Invocations", "Errors", "Duration", "Throttles")


def python_files() -> Iterator[Path]:
    for source in SOURCES:
        yield from source.rglob("*.py")


def metric_names_referenced(source: str) -> set[str]:
    """``MetricName.X`` references in one module, as metric names."""
    members = {m.name: m.value for m in MetricName}
    return {
        members[node.attr]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "MetricName"
        and node.attr in members
    }


def literal_metric_names(source: str) -> list[str]:
    """``add_metric(name="...")`` calls with a string literal: a name outside the list."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric":
            for keyword in node.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    found.append(str(keyword.value.value))
    return found


def emitted_by_code() -> set[str]:
    names: set[str] = set()
    for path in python_files():
        if path.name != "observability.py":  # the list itself
            names |= metric_names_referenced(path.read_text())
    return names


def dashboard_text(template: Template) -> str:
    """The body's text with its Fn::Sub variables inlined as they read where their condition holds (the webhook's
    entries, UsesWebhookIngress): every resource the template can create is checked."""
    (dashboard,) = rules.resources(template, "AWS::CloudWatch::Dashboard").values()
    sub = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    if isinstance(sub, str):
        return sub
    text, variables = sub
    for name, value in variables.items():
        when_true = value["Fn::If"][1] if isinstance(value, dict) and "Fn::If" in value else value
        inlined = when_true["Fn::Sub"] if isinstance(when_true, dict) else str(when_true)
        text = text.replace("${" + name + "}", inlined)
    return str(text)


def dashboard_body(template: Template) -> dict[str, Any]:
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"{{\1}}", dashboard_text(template)))  # type: ignore[no-any-return]


def placeholder(reference: str) -> str:
    """How dashboard_body leaves a ``${...}`` substitution."""
    return "{{" + reference + "}}"


def dashboard_metrics(template: Template) -> list[list[Any]]:
    return [
        m
        for widget in dashboard_body(template)["widgets"]
        if widget["type"] == "metric"
        for m in widget["properties"]["metrics"]
    ]


def named_by_template(template: Template) -> set[str]:
    alarms = {
        str(a["Properties"]["MetricName"])
        for a in rules.resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == NAMESPACE
    }
    return alarms | {str(m[1]) for m in dashboard_metrics(template) if m[0] == NAMESPACE}


def metric_findings(template: Template, emitted: set[str]) -> list[str]:
    findings = [f"{n}: named by the template, never emitted" for n in sorted(named_by_template(template) - emitted)]
    shown = {str(m[1]) for m in dashboard_metrics(template) if m[0] == NAMESPACE}
    findings += [f"{n}: emitted, not on the dashboard" for n in sorted(emitted - shown)]
    return findings


def dashboard_findings(template: Template) -> list[str]:
    findings: list[str] = []
    lambda_metrics = [m for m in dashboard_metrics(template) if m[0] == "AWS/Lambda"]
    for function in rules.functions(template):
        for signal in GOLDEN_SIGNALS:
            if not any(m[1] == signal and m[3] == placeholder(function) for m in lambda_metrics):
                findings.append(f"{function}: no {signal} on the dashboard")
    alarm_widgets = [w for w in dashboard_body(template)["widgets"] if w["type"] == "alarm"]
    listed = {a for w in alarm_widgets for a in w["properties"]["alarms"]}
    for alarm in rules.resources(template, "AWS::CloudWatch::Alarm"):
        if placeholder(f"{alarm}.Arn") not in listed:
            findings.append(f"{alarm}: not in the dashboard's alarm widget")
    return findings


def alarm_findings(template: Template) -> list[str]:
    present = {
        (a["Properties"].get("Namespace"), a["Properties"].get("MetricName"))
        for a in rules.resources(template, "AWS::CloudWatch::Alarm").values()
    }
    return [f"no alarm on {ns} {name}" for ns, name in sorted(REQUIRED_ALARMS - present)]


@pytest.fixture
def template() -> Template:
    return copy.deepcopy(load_template())


def test_the_code_names_every_metric_from_the_one_list() -> None:
    # Given every module of the layer and the functions / Then no metric name is a bare string
    offenders = {str(p.relative_to(ROOT)): literal_metric_names(p.read_text()) for p in python_files()}
    assert {p: names for p, names in offenders.items() if names} == {}
    # And every listed name is emitted somewhere (a name nobody emits would be an alarm that never fires)
    assert emitted_by_code() == {m.value for m in MetricName}


def test_the_alarms_and_the_dashboard_name_exactly_the_emitted_metrics(template: Template) -> None:
    assert metric_findings(template, emitted_by_code()) == []


def test_every_function_has_its_golden_signals_and_every_alarm_is_on_the_dashboard(template: Template) -> None:
    assert dashboard_findings(template) == []


def test_the_alarms_the_operators_need_exist(template: Template) -> None:
    assert alarm_findings(template) == []


# ---- controls: each check on something broken the way it guards against


def test_control_a_literal_metric_name_is_found() -> None:
    assert literal_metric_names('metrics.add_metric(name="Sneaky", unit=u, value=1)') == ["Sneaky"]
    assert metric_names_referenced("m.add_metric(name=MetricName.USAGE_SENT)") == {"UsageSent"}


def test_control_an_alarm_on_a_metric_nobody_emits_is_found(template: Template) -> None:
    template["Resources"]["WebhookSignatureFailuresAlarm"]["Properties"]["MetricName"] = "WebhookSignatureFailures"
    assert metric_findings(template, emitted_by_code()) == [
        "WebhookSignatureFailures: named by the template, never emitted"
    ]


def test_control_an_emitted_metric_missing_from_the_dashboard_is_found(template: Template) -> None:
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]
    body["Fn::Sub"][0] = body["Fn::Sub"][0].replace('"UsageDrift"', '"UsageDriftX"')
    assert metric_findings(template, emitted_by_code()) == [
        "UsageDriftX: named by the template, never emitted",
        "UsageDrift: emitted, not on the dashboard",
    ]


def test_control_a_function_without_golden_signals_is_found(template: Template) -> None:
    template["Resources"]["NewFunction"] = copy.deepcopy(template["Resources"]["UsageDriftFunction"])
    findings = dashboard_findings(template)
    assert [f for f in findings if f.startswith("NewFunction")] == [
        f"NewFunction: no {s} on the dashboard" for s in GOLDEN_SIGNALS
    ]


def test_control_a_missing_alarm_is_found(template: Template) -> None:
    del template["Resources"]["WebhookLagAlarm"]
    assert alarm_findings(template) == ["no alarm on Tollgate WebhookLagSeconds"]
