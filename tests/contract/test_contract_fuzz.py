"""The contract test: schemathesis against the whole local stack (API Gateway emulator with the template's routes
and authorizers, the function workers, moto, the Stripe emulator), driven by the document the stack itself serves
at ``GET /openapi.json``. Every operation gets schema-valid and hostile requests; every response must have a
documented status, content type, headers and a body matching its schema, and none may be a 5xx."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from devstack.stack import LocalStack
from tests.contract.fuzz import Callers, Report, generated_cases, send_and_check
from tests.e2e.test_checkout_journey import TIMEOUT, bearer, pay_on_hosted_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Generated requests per operation and mode: up to 85 valid and 85 hostile ones where the operation has inputs
#: (a body, a parameter, a header), and a request without inputs sent 20 times (every caller variant).
EXAMPLES_PER_MODE = 85
REPEATS_OF_FIXED_REQUESTS = 20
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


@pytest.fixture(scope="module")
def served_schema(local_stack: LocalStack) -> schemathesis.BaseSchema:
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
    # Loaded from the served bytes (from_url would leave the document's own route out of the run).
    served = requests.get(f"{local_stack.api_url}/openapi.json", timeout=TIMEOUT)
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json(), config=config)
    schema.config.update(base_url=local_stack.api_url)
    return schema


def test_every_operation_answers_only_what_the_document_says(
    local_stack: LocalStack, served_schema: schemathesis.BaseSchema
) -> None:
    # Given the served document, many users (two of them paying) and the template's authorizers in front
    users = [subscribed_user(local_stack) for _ in range(2)] + [f"contract-{uuid.uuid4().hex[:10]}" for _ in range(30)]
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
    print(f"{report.summary()} in {time.monotonic() - started:.0f} s")
    for operation, count in sorted(report.by_operation.items()):
        print(f"  {operation}: {count} {sorted(report.statuses_by_operation[operation])}")
    # Then there were enough of them, over every operation, with no 5xx and no response the document does not allow
    assert report.requests >= MINIMUM_REQUESTS, report.summary()
    assert set(report.by_operation) == {operation.label for operation in operations}
    assert report.server_errors == 0, report.summary()
    distinct = [violation for violation in report.violations if not violation.endswith("(repeat)")]
    assert report.violations == [], "\n".join([report.summary(), *distinct[:40]])
