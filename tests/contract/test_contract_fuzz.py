"""The contract test: schemathesis against the whole local stack (API Gateway emulator with the template's routes
and authorizers, the function workers, moto, the Stripe emulator), driven by the document the stack itself serves
at ``GET /openapi.json``. Every operation gets schema-valid and hostile requests; every response must have a
documented status, content type, headers and a body matching its schema, and none may be a 5xx."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from devstack.stack import LocalStack
from tests.contract.fuzz import Callers, Report, generated_cases, send_and_check
from tests.e2e.test_checkout_journey import TIMEOUT, bearer, pay_on_hosted_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Generated requests per operation and mode: up to 82 valid and 82 hostile ones where the operation has inputs
#: (a body, a parameter, a header), and a request without inputs sent 20 times (every caller variant).
EXAMPLES_PER_MODE = 82
REPEATS_OF_FIXED_REQUESTS = 20
#: Per catalog plan, for checkout and preview (catalog_cases).
CATALOG_CASES = 8
#: The function pools run up to 4 environments each (devstack.functions.FunctionPool), like reserved concurrency.
CONCURRENCY = 4
MINIMUM_REQUESTS = 2_000

#: A valid request may still be refused for what the document cannot know: the catalog's plan keys and quantity
#: ranges, a session id Stripe never issued, an Idempotency-Key of the wrong alphabet (all 400, documented).
POSITIVE_ACCEPTED = ["2xx", "400", "401", "403", "404", "409", "429"]
NEGATIVE_REJECTED = ["400", "401", "403", "404", "409", "413", "422", "429"]


def subscribed_user(stack: LocalStack) -> str:
    """A user with a live subscription, so the plan-change, cancel, invoice and portal routes get past 404/409."""
    user = f"contract-{uuid.uuid4().hex[:10]}"
    token = stack.token_for(user, f"{user}@example.com")
    response = requests.post(
        f"{stack.api_url}/checkout/sessions", headers=bearer(token), json={"plan": "starter"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    pay_on_hosted_page(response.json()["url"])
    return user


def load_schema(document: dict[str, Any], api_url: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            # Credentials are the callers' (tests.contract.fuzz.Callers: valid, missing or refused ones), never
            # generated: a generated token could not pass, and would keep every hostile body from the function.
            "generation": {"with-security-parameters": False},
            "checks": {
                "positive_data_acceptance": {"expected-statuses": POSITIVE_ACCEPTED},
                "negative_data_rejection": {"expected-statuses": NEGATIVE_REJECTED},
            },
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    schema.config.update(base_url=api_url)
    return schema


@pytest.fixture(scope="module")
def served_document(local_stack: LocalStack) -> dict[str, Any]:
    # Loaded from the served bytes (from_url would leave the document's own route out of the run).
    served = requests.get(f"{local_stack.api_url}/openapi.json", timeout=TIMEOUT)
    assert served.status_code == 200, served.text
    document: dict[str, Any] = served.json()
    return document


@pytest.fixture(scope="module")
def served_schema(local_stack: LocalStack, served_document: dict[str, Any]) -> schemathesis.BaseSchema:
    return load_schema(served_document, local_stack.api_url)


def catalog_cases(schema: schemathesis.BaseSchema, stack: LocalStack) -> list[tuple[str, list[Any]]]:
    """Valid requests the generator cannot guess: the catalog's plan keys (runtime configuration, not the
    document), so checkout and preview get past "unknown plan" to Stripe."""
    plans = requests.get(f"{stack.api_url}/plans", timeout=TIMEOUT).json()["plans"]
    bodies = [{"plan": plan["plan"], "quantity": plan["min_quantity"]} for plan in plans]
    cases = []
    for label in ("POST /checkout/sessions", "POST /billing/subscription/preview"):
        operation = schema.find_operation_by_label(label)
        assert operation is not None
        cases.append(
            (
                label,
                [
                    c
                    for body in bodies
                    for c in generated_cases(operation, GenerationMode.POSITIVE, CATALOG_CASES, body=body)
                ],
            )
        )
    return cases


def test_every_operation_answers_only_what_the_document_says(
    local_stack: LocalStack, served_schema: schemathesis.BaseSchema
) -> None:
    # Given the served document, many users (two of them paying) and the template's authorizers in front
    paying = [subscribed_user(local_stack) for _ in range(2)]
    users = paying + [f"contract-{uuid.uuid4().hex[:10]}" for _ in range(30)]
    callers = Callers(local_stack, users)
    report = Report()
    operations = [result.ok() for result in served_schema.get_all_operations()]
    documented = {
        f"{method.upper()} {path}" for path, item in served_schema.raw_schema["paths"].items() for method in item
    }
    assert {operation.label for operation in operations} == documented
    # When every operation gets schema-valid and hostile generated requests
    started = time.monotonic()
    with requests.Session() as session:
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))
        for operation in operations:
            valid = generated_cases(operation, GenerationMode.POSITIVE, EXAMPLES_PER_MODE)
            # Few distinct valid requests (no parameters): the same ones again, each with the next caller variant
            valid = [valid[n % len(valid)] for n in range(max(len(valid), REPEATS_OF_FIXED_REQUESTS))]
            hostile = generated_cases(operation, GenerationMode.NEGATIVE, EXAMPLES_PER_MODE)
            send_and_check(operation, valid + hostile, callers, report, session, CONCURRENCY)
        # And the catalog's own plans, from new users (checkout) and from the paying ones (preview)
        for label, cases in catalog_cases(served_schema, local_stack):
            owners = users[2:] if label.startswith("POST /checkout") else paying
            operation = served_schema.find_operation_by_label(label)
            send_and_check(
                operation, cases, Callers(local_stack, owners, every_one_valid=True), report, session, CONCURRENCY
            )
    print(f"{report.summary()} in {time.monotonic() - started:.0f} s")
    for operation, count in sorted(report.by_operation.items()):
        print(f"  {operation}: {count} {sorted(report.statuses_by_operation[operation])}")
    # Then there were enough of them, over every operation, with no 5xx and no response the document does not allow
    assert report.requests >= MINIMUM_REQUESTS, report.summary()
    assert set(report.by_operation) == {operation.label for operation in operations}
    assert report.server_errors == 0, report.summary()
    distinct = [violation for violation in report.violations if not violation.endswith("(repeat)")]
    assert report.violations == [], "\n".join([report.summary(), *distinct[:40]])


@pytest.mark.parametrize(
    "naive",
    ["a route that does not list a status it answers", "a success schema that promises a field it never sends"],
)
def test_control_a_document_that_lies_is_caught(
    local_stack: LocalStack, served_document: dict[str, Any], naive: str
) -> None:
    # Given a copy of the served document made untrue in one place
    document = copy.deepcopy(served_document)
    if naive.startswith("a route"):
        label, path = "GET /checkout/sessions/{session_id}", "/checkout/sessions/{session_id}"
        # the product answers 404 for a session that is not the caller's (every generated id)
        document["paths"][path]["get"]["responses"].pop("404")
    else:
        label = "GET /billing/subscription"
        schemas = document["components"]["schemas"]
        schemas["BillingSubscription"]["required"].append("renews_at")
        schemas["BillingSubscription"]["properties"]["renews_at"] = {"type": "integer"}
    schema = load_schema(document, local_stack.api_url)
    operation = schema.find_operation_by_label(label)
    users = [f"contract-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    report = Report()
    # When the same contract run checks the product against it
    with requests.Session() as session:
        cases = generated_cases(operation, GenerationMode.POSITIVE, 20)
        cases = [cases[n % len(cases)] for n in range(max(len(cases), 10))]
        send_and_check(operation, cases, Callers(local_stack, users, every_one_valid=True), report, session, 2)
    # Then the lie is found
    assert report.requests >= 10
    assert report.violations, report.summary()
