"""Domain errors map to HTTP statuses in one place; identity comes only from verified JWT claims."""

from __future__ import annotations

import json

import pytest

from tests.support.events import http_api_event
from tollgate import errors
from tollgate.http.identity import caller_from
from tollgate.http.responses import error_response


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequest(), 400),
        (errors.Unauthenticated(), 401),
        (errors.NotFound(), 404),
        (errors.Conflict(), 409),
        (errors.PayloadTooLarge(), 413),
        (errors.RateLimited(), 429),
        (errors.UpstreamUnavailable(), 503),
        (errors.PersistenceUnavailable(), 503),
        (errors.UpstreamRejected(), 502),
        (errors.ConfigurationError(), 500),
    ],
)
def test_each_domain_error_has_one_status(error: errors.TollgateError, status: int) -> None:
    response = error_response(error)
    assert response.status_code == status
    assert json.loads(str(response.body))["error"]["status"] == status


def test_retryable_errors_tell_the_caller_when_to_retry() -> None:
    response = error_response(errors.UpstreamUnavailable(retry_after_seconds=7))
    assert response.headers["Retry-After"] == "7"


def test_caller_comes_from_verified_claims_only() -> None:
    # Given a request whose body and headers claim another user
    event = http_api_event(
        "POST",
        "/portal/sessions",
        body={"user_id": "victim"},
        headers={"x-user-id": "victim"},
        claims={"sub": "user-a", "email": "a@example.com", "email_verified": "true"},
    )
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    # When the caller is resolved, Then only the verified sub counts
    caller = caller_from(APIGatewayProxyEventV2(event))
    assert caller.user_id == "user-a"
    assert caller.email == "a@example.com"


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"sub": 5}])
def test_missing_or_odd_authorizer_context_fails_closed(claims: dict[str, object] | None) -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    event = http_api_event("GET", "/billing/subscription", claims=claims)
    with pytest.raises(errors.Unauthenticated):
        caller_from(APIGatewayProxyEventV2(event))
