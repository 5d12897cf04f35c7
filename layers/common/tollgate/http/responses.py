"""HTTP responses shared by the API functions: the resolver with request validation, the one mapping from domain
errors to status codes, and JSON answers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError, ResponseValidationError
from pydantic import BaseModel, ValidationError

from tollgate import errors
from tollgate.domain.json_documents import UnacceptableJson, parse_json_document
from tollgate.http.models import ErrorDetail, ErrorResponse
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
    return _error(status_for(error), error.public_reason, error)


def _error(status: HTTPStatus, reason: str, error: Exception) -> Response[str]:
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    retry_after = getattr(error, "retry_after_seconds", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        # The caller gets a short reason; the log gets the error class, never request data or secrets.
        logger.error("request failed", error_type=type(error).__name__, status=int(status))
    body = ErrorResponse(error=ErrorDetail(status=int(status), reason=reason))
    return Response(status_code=int(status), content_type=JSON, body=json.dumps(body.model_dump()), headers=headers)


def json_response(body: object, status: int = 200, cache_seconds: int = 0) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=_cache_headers(cache_seconds))


def model_response[Model: BaseModel](body: Model, status: int = 200, cache_seconds: int = 0) -> Response[Model]:
    """A route's answer as its response model: Powertools validates it against the handler's ``Response[Model]``
    annotation (the schema the OpenAPI document publishes) and serializes it."""
    return Response(status_code=status, content_type=JSON, body=body, headers=_cache_headers(cache_seconds))


def _cache_headers(cache_seconds: int) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={cache_seconds}" if cache_seconds else "no-store"}


#: The 404 of a path the function's router has no route for (a domain NotFound says what was not found).
UNROUTED_REASON = "no such route"

#: The customer-facing routes take a plan key, a quantity, a flow or a token: a larger body is refused unread.
MAX_REQUEST_BODY_BYTES = 16 * 1024


class GuardedHttpResolver(APIGatewayHttpResolver):
    """Refuses a body that is not JSON the product accepts (tollgate.domain.json_documents) or is too large,
    before Powertools' request validation parses it: that parse raises RecursionError on deep nesting and
    ValueError on huge integers, which would surface as 500s."""

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        refused = refuse_unacceptable_body(event)
        if refused is not None:
            return refused
        return super().resolve(event, context)


def refuse_unacceptable_body(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The API Gateway answer for a hostile body (413 or 400, the shared error shape), or None to go on."""
    body = event.get("body")
    if not body or not isinstance(body, str):
        return None
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return _proxy_answer(errors.InvalidRequest("body is not valid base64"))
    if len(raw) > MAX_REQUEST_BODY_BYTES:
        return _proxy_answer(errors.PayloadTooLarge())
    try:
        parse_json_document(raw)
    except UnacceptableJson as exc:
        return _proxy_answer(errors.InvalidRequest(exc.reason))
    return None


def _proxy_answer(error: errors.TollgateError) -> dict[str, Any]:
    response = error_response(error)
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": JSON, **(response.headers or {})},
        "body": response.body,
        "isBase64Encoded": False,
    }


def build_resolver() -> APIGatewayHttpResolver:
    """An HTTP API (payload 2.0) resolver with request validation, hostile bodies refused before it, and the
    project's error mapping."""
    # A handler whose answer does not fit its response model is a bug: a 500 in the error shape, never a 422.
    app = GuardedHttpResolver(
        enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR
    )

    @app.exception_handler(errors.TollgateError)  # type: ignore[untyped-decorator]
    def _domain_error(error: errors.TollgateError) -> Response[str]:
        return error_response(error)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_body(error: RequestValidationError) -> Response[str]:
        # Report where the body is wrong, never echo the submitted values back.
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in error.errors()})
        reason = "invalid request: " + ", ".join(fields)[:200]
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, reason, error)

    @app.exception_handler([ResponseValidationError, ValidationError])  # type: ignore[untyped-decorator]
    def _invalid_answer(error: Exception) -> Response[str]:
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", error)

    @app.not_found
    def _no_route(error: NotFoundError) -> Response[str]:
        # API Gateway matched a route whose path parameter the function's router does not take (e.g. a character
        # outside Powertools' segment pattern): the product's 404, not Powertools' own shape.
        return _error(HTTPStatus.NOT_FOUND, UNROUTED_REASON, error)

    return app
