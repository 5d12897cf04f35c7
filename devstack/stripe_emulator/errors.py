"""Stripe error objects: one exception type carries status, body and extra headers.

Handlers raise `StripeError`; the server turns it into the JSON body the SDK maps onto its exception classes
(400 InvalidRequestError, 401 AuthenticationError, 402 CardError, 404 resource_missing, 409, 429, 500 APIError).
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An API error answered as `{"error": {...}}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
        if self.param is not None:
            err["param"] = self.param
        err.update(self.extra)
        return {"error": err}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """400 invalid_request_error (the SDK raises InvalidRequestError)."""
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def not_found(kind: str, obj_id: str, param: str = "id") -> StripeError:
    """404 resource_missing, the shape Stripe uses for unknown or deleted ids."""
    return StripeError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def unknown_route(method: str, path: str) -> StripeError:
    return StripeError(404, f"Unrecognized request URL ({method}: {path}).", code="resource_missing", param=None)


# Stripe's 401 bodies carry no code and a challenge header, and the key only masked.
AUTH_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Stripe"'}
NO_API_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer "
    "auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
    "details, or we can help at https://support.stripe.com/."
)


def masked_key(key: str) -> str:
    """A key as Stripe echoes it: its prefix (``sk_test_``) and last four characters, the rest starred."""
    prefix_end = key.rfind("_", 0, max(len(key) - 4, 0)) + 1
    secret = key[prefix_end:]
    return key[:prefix_end] + "*" * max(len(secret) - 4, 0) + secret[-4:]


def authentication(message: str = "Invalid API Key provided.") -> StripeError:
    return StripeError(401, message, type_="invalid_request_error", headers=dict(AUTH_CHALLENGE))


def no_api_key() -> StripeError:
    return authentication(NO_API_KEY_MESSAGE)


def invalid_api_key(key: str) -> StripeError:
    return authentication(f"Invalid API Key provided: {masked_key(key)}")


def card_declined(message: str = "Your card was declined.", decline_code: str = "generic_decline") -> StripeError:
    return StripeError(402, message, type_="card_error", code="card_declined", extra={"decline_code": decline_code})


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        f"Keys for idempotent requests can only be used with the same parameters they were first used with. "
        f"Try using a key other than '{key}' if you meant to execute a different request.",
        type_="idempotency_error",
    )


def idempotency_in_flight() -> StripeError:
    return StripeError(
        409,
        "There is currently another in-progress request using this Idempotent Key (that probably means you "
        "submitted twice, and the other request is still going through): please retry the request later.",
        code="idempotency_key_in_use",
    )


def lock_timeout() -> StripeError:
    return StripeError(
        409,
        "This object cannot be accessed right now because another API request or Stripe process is "
        "currently accessing it.",
        code="lock_timeout",
    )


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        type_="invalid_request_error",
        code="rate_limit",
    )


def api_error(status: int = 500) -> StripeError:
    return StripeError(status, "An unknown error occurred (emulated fault).", type_="api_error", code=None, param=None)


def fault_error(status: int) -> StripeError:
    """The error body a fault knob answers with, per status."""
    if status == 409:
        return lock_timeout()
    if status == 429:
        return rate_limited()
    if status == 402:
        return card_declined()
    if status == 401:
        return authentication()
    if status == 404:
        return StripeError(404, "Emulated missing resource.", code="resource_missing")
    if status >= 500:
        return api_error(status)
    return invalid("Emulated fault.")
