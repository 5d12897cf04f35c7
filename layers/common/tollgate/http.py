"""HTTP boundary shared by the API functions: one mapping from domain errors to responses, and the caller's
identity taken only from the claims API Gateway's JWT authorizer verified."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from tollgate import errors
from tollgate.observability import logger

JSON = "application/json"

# Domain error -> HTTP status. Anything not listed is a bug and surfaces as a 500 (never a 200 or 400).
STATUS_FOR_ERROR: dict[type[errors.TollgateError], HTTPStatus] = {
    errors.InvalidRequest: HTTPStatus.BAD_REQUEST,
    errors.Unauthenticated: HTTPStatus.UNAUTHORIZED,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.NotFound: HTTPStatus.NOT_FOUND,
    errors.Conflict: HTTPStatus.CONFLICT,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    errors.UpstreamUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    errors.PersistenceUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    errors.UpstreamRejected: HTTPStatus.BAD_GATEWAY,
    errors.UpstreamNotFound: HTTPStatus.NOT_FOUND,
    errors.ConfigurationError: HTTPStatus.INTERNAL_SERVER_ERROR,
}


def status_for(error: errors.TollgateError) -> HTTPStatus:
    for cls in type(error).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_response(error: errors.TollgateError) -> Response[str]:
    status = status_for(error)
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    retry_after = getattr(error, "retry_after_seconds", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        # The caller gets a short reason; the log gets the error class, never request data or secrets.
        logger.error("request failed", error_type=type(error).__name__, status=int(status))
    return Response(
        status_code=int(status),
        content_type=JSON,
        body=json.dumps({"error": {"status": int(status), "reason": error.public_reason}}),
        headers=headers,
    )


def json_response(body: object, status: int = 200, cache_seconds: int = 0) -> Response[str]:
    cache = f"public, max-age={cache_seconds}" if cache_seconds else "no-store"
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers={"Cache-Control": cache})


def build_resolver() -> APIGatewayHttpResolver:
    """An HTTP API (payload 2.0) resolver with request validation and the project's error mapping."""
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(errors.TollgateError)  # type: ignore[untyped-decorator]
    def _domain_error(error: errors.TollgateError) -> Response[str]:
        return error_response(error)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_body(error: RequestValidationError) -> Response[str]:
        # Report where the body is wrong, never echo the submitted values back.
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in error.errors()})
        reason = "invalid request: " + ", ".join(fields)[:200]
        return Response(
            status_code=int(HTTPStatus.UNPROCESSABLE_ENTITY),
            content_type=JSON,
            body=json.dumps({"error": {"status": 422, "reason": reason}}),
            headers={"Cache-Control": "no-store"},
        )

    return app


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in user, as API Gateway's JWT authorizer verified them."""

    user_id: str
    email: str | None
    scopes: frozenset[str]


def caller_from(event: APIGatewayProxyEventV2) -> Caller:
    """Identity comes only from the verified JWT claims; the body, query and custom headers never count.

    Fails closed when the authorizer context is missing (a direct invoke or a misrouted request).
    """
    context = event.raw_event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    jwt = authorizer.get("jwt") if isinstance(authorizer, dict) else None
    claims = jwt.get("claims") if isinstance(jwt, dict) else None
    if not isinstance(claims, dict):
        raise errors.Unauthenticated()
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise errors.Unauthenticated()
    email = claims.get("email")
    verified = claims.get("email_verified") in (True, "true")
    scopes_raw = jwt.get("scopes") if isinstance(jwt, dict) else None
    scopes = frozenset(s for s in (scopes_raw or []) if isinstance(s, str))
    return Caller(user_id=sub, email=email if isinstance(email, str) and verified else None, scopes=scopes)
