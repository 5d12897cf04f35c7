"""The composition root: the one place that builds real clients and wires adapters into services.

Nothing is built at import time. Each client is created on first use and then reused for the life of the
execution environment; tests replace pieces by constructing a ``Container`` with their own collaborators.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from tollgate.config import Settings, get_settings
from tollgate.secrets import StripeSecrets, load_stripe_secrets

if TYPE_CHECKING:
    import stripe
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

    from tollgate.catalog import CatalogCache
    from tollgate.customers import CustomerDirectory
    from tollgate.rate_limit import RateLimiter
    from tollgate.usage.reporter import UsageReporter


class Container:
    """Lazily built, process-wide collaborators."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._stripe_client: stripe.StripeClient | None = None
        self._stripe_key_fingerprint: int | None = None

    @cached_property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def stripe_secrets(self, force_fetch: bool = False) -> StripeSecrets:
        return load_stripe_secrets(
            self.settings.stripe_secret_arn, self.settings.secret_cache_seconds, force_fetch=force_fetch
        )

    def stripe(self) -> stripe.StripeClient:
        """The StripeClient, rebuilt only when the key in Secrets Manager changed (key rotation)."""
        from tollgate.adapters.stripe_client import build_stripe_client

        api_key = self.stripe_secrets().api_key.get_secret_value()
        fingerprint = hash(api_key)
        with self._lock:
            if self._stripe_client is None or fingerprint != self._stripe_key_fingerprint:
                self._stripe_client = build_stripe_client(self.settings, api_key)
                self._stripe_key_fingerprint = fingerprint
            return self._stripe_client

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        from tollgate.adapters.aws import dynamodb_client

        return dynamodb_client()

    @cached_property
    def sqs(self) -> SQSClient:
        from tollgate.adapters.aws import sqs_client

        return sqs_client()

    @cached_property
    def usage_reporter(self) -> UsageReporter:
        from tollgate.usage.wiring import build_usage_reporter

        return build_usage_reporter(self)

    @cached_property
    def events(self) -> EventBridgeClient:
        from tollgate.adapters.aws import events_client

        return events_client()

    # Customer-facing API (checkout and portal functions).
    @cached_property
    def customer_directory(self) -> CustomerDirectory:
        from tollgate.customers import DynamoCustomerDirectory

        return DynamoCustomerDirectory(self.dynamodb, self.settings.table_name)

    @cached_property
    def plan_catalog(self) -> CatalogCache:
        from tollgate.catalog import CatalogCache, StripeCatalogGateway

        return CatalogCache(self.settings.plan_catalog, lambda: StripeCatalogGateway(self.stripe()))

    @cached_property
    def session_rate_limiter(self) -> RateLimiter:
        from tollgate.rate_limit import DynamoRateLimiter

        return DynamoRateLimiter(self.dynamodb, self.settings.table_name, self.settings.session_rate_limit_per_minute)


_container: Container | None = None
_container_lock = threading.Lock()


def container() -> Container:
    """The process-wide container (one per Lambda execution environment)."""
    global _container  # noqa: PLW0603 - the composition root is the one sanctioned process-wide object
    with _container_lock:
        if _container is None:
            _container = Container()
        return _container


def reset_container(replacement: Container | None = None) -> None:
    """Tests and the local stack swap the container; production never calls this."""
    global _container  # noqa: PLW0603
    with _container_lock:
        _container = replacement
