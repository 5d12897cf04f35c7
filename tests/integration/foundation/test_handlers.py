"""Handlers answer every route template.yaml gives them: no route is unrouted and none is a 501 placeholder any more
(every capability has landed; each route's behaviour is tested by its own issue's suites)."""

from __future__ import annotations

import importlib
import json
import re
from types import ModuleType
from typing import Any

import pytest

from tests.support.events import FakeLambdaContext, http_api_event
from tests.support.template import load_template
from tests.template.rules import http_api_routes
from tollgate.http.responses import UNROUTED_REASON

TEMPLATE = load_template()
FUNCTION_MODULES = {
    logical_id: "functions." + resource["Properties"]["CodeUri"].strip("/").split("/")[-1] + ".app"
    for logical_id, resource in TEMPLATE["Resources"].items()
    if resource.get("Type") == "AWS::Serverless::Function"
}
ROUTES = sorted((fn, props["Method"], props["Path"]) for fn, _, props in http_api_routes(TEMPLATE))
CLAIMS = {"sub": "user-foundation-test", "email": "user@example.com", "email_verified": "true"}


def handler_module(function: str) -> ModuleType:
    return importlib.import_module(FUNCTION_MODULES[function])


def invoke(function: str, method: str, path: str) -> dict[str, Any]:
    concrete = re.sub(r"\{[^}]+\}", "cs_foundation_1", path)
    event = http_api_event(
        method,
        concrete,
        body={} if method == "POST" else None,
        claims=CLAIMS,
        scopes=["aws.cognito.signin.user.admin"],
        route_key=f"{method} {path}",
        path_parameters={"id": "cs_foundation_1"} if "{id}" in path else None,
    )
    result: dict[str, Any] = handler_module(function).handler(event, FakeLambdaContext())
    return result


def is_unrouted(response: dict[str, Any]) -> bool:
    """The resolver's answer for a method/path it has no route for (in the error shape, with its own reason)."""
    body = json.loads(response.get("body") or "{}")
    return response["statusCode"] in (404, 405) and body.get("error", {}).get("reason") in (None, UNROUTED_REASON)


@pytest.fixture(autouse=True)
def _isolated(billing_table: str, fresh_container: Any) -> None:
    """moto (with the billing table) for any AWS call an implemented route makes, and a fresh composition root."""


def test_the_template_routes_are_the_expected_ones() -> None:
    # Guards the parametrisation below against an empty or misread template
    assert len(ROUTES) >= 7
    assert ("WebhookFunction", "POST", "/webhooks/stripe") in ROUTES
    assert set(FUNCTION_MODULES) == {
        "CheckoutFunction",
        "PortalFunction",
        "WebhookFunction",
        "UsageFunction",
        "PublisherFunction",
        "ProvisionerFunction",
        "StripeEventsFunction",
        "UsageDriftFunction",
    }


@pytest.mark.parametrize(("function", "method", "path"), ROUTES, ids=[f"{m} {p}" for _, m, p in ROUTES])
def test_every_template_route_reaches_its_handler(function: str, method: str, path: str) -> None:
    # Given an API Gateway event for a route the template declares
    # When the function that the template wires to it handles the event
    response = invoke(function, method, path)
    # Then the handler has the route (the resolver's own "no such route" 404 carries no domain error body)
    assert not is_unrouted(response), response
    # And the capability is real: no placeholder answer is left
    assert response["statusCode"] != 501, response


def test_control_an_unknown_route_is_recognised_as_unrouted() -> None:
    # Control for the routing test: a path no handler declares is detected as unrouted
    response = invoke("CheckoutFunction", "GET", "/nowhere")
    assert is_unrouted(response)
