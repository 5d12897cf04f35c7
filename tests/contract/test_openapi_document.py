"""The OpenAPI document: generated from the handlers, committed (docs/openapi.json and the copy the checkout
function serves), valid OpenAPI 3.1, and truthful about what each route answers and who may call it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from devstack import openapi as generator
from devstack.template import load_template
from tests.support.events import FakeLambdaContext, http_api_event
from tests.template.rules import http_api_routes
from tollgate.http import contract
from tollgate.http.openapi import openapi_document, published_document, render
from tollgate.services.idempotency import _CLIENT_KEY
from tollgate.services.success_page import CHECKOUT_SESSION_ID

ROOT = Path(__file__).resolve().parents[2]
ERROR_REF = "#/components/schemas/ErrorResponse"
GATEWAY_REF = "#/components/schemas/GatewayErrorResponse"
#: The functions whose routes the document describes (the webhook's route is Stripe's: docs/webhooks.md).
DOCUMENTED_FUNCTIONS = {"CheckoutFunction", "PortalFunction"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return generator.generate()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return resolve(document, document["components"]["schemas"][ref.rsplit("/", 1)[-1]]) if ref else schema


def test_the_committed_copies_are_what_the_handlers_generate(document: dict[str, Any]) -> None:
    # Given the document generated from the checkout and portal handlers
    # When it is compared with docs/openapi.json and the copy the checkout function serves
    stale = generator.stale_copies(render(document))
    # Then neither has drifted
    assert stale == [], f"{[str(p.relative_to(ROOT)) for p in stale]} differ from the handlers: run make openapi"


def test_control_a_changed_route_is_drift() -> None:
    # Given the checkout handlers with one route moved (a copy: the real app stays as it is)
    checkout = copy.deepcopy(generator.importlib.import_module("functions.checkout.app").app)
    plans = next(route for route in checkout._static_routes if route.path == "/plans")
    plans.openapi_path = "/pricing"
    portal = generator.importlib.import_module("functions.portal.app").app
    # When the document is generated from them
    changed = render(openapi_document(checkout, portal))
    # Then both committed copies are stale
    assert generator.stale_copies(changed) == list(generator.COMMITTED)
    assert "/pricing" in json.loads(changed)["paths"]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # openapi-spec-validator: raises on any violation of the specification


def test_every_success_is_an_object_with_properties(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert len(successes) == 1, (method, path)
        for response in successes.values():
            schema = resolve(document, response["content"]["application/json"]["schema"])
            assert schema["type"] == "object", (method, path)
            assert schema["properties"], (method, path)


def test_every_error_status_has_the_shared_error_shape(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        # every route: a hostile body, an oversized one, throttling and faults
        assert {"400", "413", "429", "500", "503"} <= set(errors), (method, path)
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            refs = [s["$ref"] for s in schema.get("anyOf", [schema])]
            assert refs in ([ERROR_REF], [ERROR_REF, GATEWAY_REF]), (method, path, code)
    error = document["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert set(resolve(document, error["properties"]["error"])["properties"]) == {"status", "reason"}
    # Powertools' own validation shapes are gone
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(
        document["components"]["schemas"]
    )


def test_security_matches_the_template(document: dict[str, Any]) -> None:
    # Given the template's routes of the documented functions and the authorizer each one has
    template = load_template(ROOT / "template.yaml")
    declared: dict[tuple[str, str], str] = {}
    for function, _, props in http_api_routes(template):
        if function in DOCUMENTED_FUNCTIONS:
            authorizer = (props.get("Auth") or {}).get("Authorizer", "JwtAuthorizer")
            kind = {"NONE": "public", "AWS_IAM": "sigv4"}.get(authorizer, "jwt")
            declared[(props["Method"], re.sub(r"\{[^}]+\}", "{}", props["Path"]))] = kind
    # When the document's operations are read
    documented: dict[tuple[str, str], str] = {}
    for method, path, operation in operations(document):
        names = [name for requirement in operation.get("security", []) for name in requirement]
        documented[(method, re.sub(r"\{[^}]+\}", "{}", path))] = names[0] if names else "public"
        if names == ["jwt"]:
            assert operation["security"] == [{"jwt": [contract.REQUIRED_SCOPE]}]
            assert {"401", "403"} <= set(operation["responses"])
    # Then every template route is documented with the template's authorizer, and nothing else is
    assert documented == declared
    scope_default = template["Parameters"]["JwtRequiredScope"]["Default"]
    assert scope_default == contract.REQUIRED_SCOPE
    schemes = document["components"]["securitySchemes"]
    assert schemes["jwt"]["type"] == "http"
    assert (schemes["jwt"]["scheme"], schemes["jwt"]["bearerFormat"]) == ("bearer", "JWT")


def test_the_published_patterns_are_the_ones_the_services_check() -> None:
    assert CHECKOUT_SESSION_ID.pattern == contract.CHECKOUT_SESSION_ID_PATTERN
    assert _CLIENT_KEY.pattern == contract.IDEMPOTENCY_KEY_PATTERN


def test_the_checkout_function_serves_the_committed_document(fresh_container: Any) -> None:
    # Given the checkout function
    from functions.checkout.app import handler

    # When GET /openapi.json reaches it (a public route: no claims)
    response = handler(http_api_event("GET", "/openapi.json"), FakeLambdaContext())
    # Then it answers the committed document, cacheable
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == published_document() == json.loads((ROOT / "docs/openapi.json").read_text())
    assert response["headers"]["Cache-Control"] == "public, max-age=300"


def test_a_body_powertools_refuses_gets_the_product_error_shape(fresh_container: Any) -> None:
    # Given a checkout request with a field the schema does not have
    from functions.checkout.app import handler

    event = http_api_event(
        "POST", "/checkout/sessions", body={"plan": "starter", "price": "price_x"}, claims={"sub": "u-1"}
    )
    # When the function validates it
    response = handler(event, FakeLambdaContext())
    # Then the 422 has the documented shape, naming the field and not echoing the value
    assert response["statusCode"] == 422
    assert json.loads(response["body"]) == {"error": {"status": 422, "reason": "invalid request: price"}}


def test_docs_describe_every_operation_and_no_other(document: dict[str, Any]) -> None:
    # docs/api.md has a section per customer-facing operation (and none for a route that does not exist);
    # docs/service-api.md names every IAM route
    def normal(route: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", route)

    sections = {
        normal(route)
        for heading in re.findall(r"^##+ (.*)$", (ROOT / "docs/api.md").read_text(), flags=re.MULTILINE)
        for route in re.findall(r"`((?:GET|POST|PUT|DELETE) /[^`?]*)", heading)
    }
    service_text = (ROOT / "docs/service-api.md").read_text()
    customer = set()
    for method, path, operation in operations(document):
        route = normal(f"{method} {path}")
        if operation.get("security") == [{"sigv4": []}]:
            assert route in {normal(r) for r in re.findall(r"`((?:GET|PUT|DELETE) /[^`?]*)`", service_text)}, route
        else:
            customer.add(route)
    assert sections == customer
