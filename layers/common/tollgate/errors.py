"""The project's own exceptions. Adapters translate Stripe and botocore errors into these; ``http`` maps them
to status codes in one place."""

from __future__ import annotations


class TollgateError(Exception):
    """Base of every error this package raises on purpose."""

    #: short reason safe to show a caller
    public_reason: str = "request failed"

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or self.public_reason)
        if reason:
            self.public_reason = reason


class ConfigurationError(TollgateError):
    """The deployment is misconfigured; raised at cold start so the problem is loud and early."""


class InvalidRequest(TollgateError):
    public_reason = "invalid request"


class Unauthenticated(TollgateError):
    public_reason = "authentication required"


class Forbidden(TollgateError):
    public_reason = "forbidden"


class NotFound(TollgateError):
    public_reason = "not found"


class Conflict(TollgateError):
    public_reason = "conflict"


class PayloadTooLarge(TollgateError):
    public_reason = "payload too large"


class RateLimited(TollgateError):
    public_reason = "too many requests"

    def __init__(self, reason: str | None = None, retry_after_seconds: int = 60) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds


class UpstreamUnavailable(TollgateError):
    """Stripe or AWS is rate limiting or down after our bounded retries: the caller may retry later."""

    public_reason = "billing provider temporarily unavailable"

    def __init__(self, reason: str | None = None, retry_after_seconds: int = 5) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds


class UpstreamRejected(TollgateError):
    """Stripe refused a request we built: our configuration or code is wrong, not the caller's input."""

    public_reason = "billing provider rejected the request"


class UpstreamNotFound(TollgateError):
    """The Stripe object asked for does not exist (deleted, or never existed)."""

    public_reason = "billing object not found"


class PersistenceUnavailable(TollgateError):
    """DynamoDB throttled or failed after retries."""

    public_reason = "storage temporarily unavailable"

    def __init__(self, reason: str | None = None, retry_after_seconds: int = 2) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds


class CustomerMissing(NotFound):
    """Stripe no longer has the user's customer (deleted): to the caller, no billing account."""

    def __init__(self) -> None:
        super().__init__("no billing account yet: start a checkout first")


class CreationKeyUnusable(UpstreamUnavailable):
    """Stripe will never succeed with this customer-creation idempotency key: it replays a stored 5xx, or refuses
    the key with different parameters.

    A 503 to the caller (retry at once): by then the generation has moved on and the retry uses a fresh key.
    """

    def __init__(self) -> None:
        super().__init__(retry_after_seconds=1)


class ProvisioningRefused(TollgateError):
    """Provisioning will not apply: a conflict with objects it does not own, a live key without permission, or a
    request Stripe refused (the reason carries Stripe's message, for the deployment's events)."""
