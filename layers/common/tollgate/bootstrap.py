"""The composition root: the one place that builds real clients and wires adapters into services.

Nothing is built at import time. Each client, adapter and service is created on first use and then reused for the
life of the execution environment (a ``lazy`` attribute). Stripe adapters receive ``Container.stripe`` as a factory,
so the StripeClient is built only when a request needs it and rebuilt when the key in Secrets Manager rotates.
Tests replace pieces by constructing a ``Container`` with their own settings, or by setting an attribute
(``container.checkout = ...``) before first use.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from tollgate.adapters.secrets_manager import StripeSecrets, load_stripe_secrets
from tollgate.config import Settings, get_settings

if TYPE_CHECKING:
    import stripe
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

    from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
    from tollgate.adapters.dynamodb.subscription_repository import DynamoSubscriptionRepository
    from tollgate.adapters.secrets_manager import SecretsManagerSigningSecrets
    from tollgate.domain.access import AccessPolicy
    from tollgate.ports.messaging import DomainEventPublisher
    from tollgate.ports.storage import RateLimiter, RequestWindows
    from tollgate.services.billing_status import BillingStatusService
    from tollgate.services.cancellations import CancellationService
    from tollgate.services.catalog import CatalogCache
    from tollgate.services.checkout import CheckoutService
    from tollgate.services.customer_accounts import CustomerAccountService
    from tollgate.services.domain_event_relay import DomainEventRelay
    from tollgate.services.event_replay import EventReplay
    from tollgate.services.invoices import InvoiceService
    from tollgate.services.plan_changes import PlanChangeService
    from tollgate.services.portal import PortalService
    from tollgate.services.provisioning import Provisioner, StackProvisioning
    from tollgate.services.reconcile import Reconciler
    from tollgate.services.stripe_event_bridge import StripeEventBridge
    from tollgate.services.subscription_writes import SubscriptionWriter
    from tollgate.services.success_page import SuccessPageCheck
    from tollgate.services.usage_drift import UsageDriftCheck
    from tollgate.services.usage_reporter import UsageReporter
    from tollgate.services.webhook import WebhookService
    from tollgate.services.webhook_handlers import HandlerContext


class lazy[T]:
    """A per-container attribute built on first access, exactly once even under concurrent first use.

    A non-data descriptor: the built value is stored in the instance's ``__dict__``, so a test can also assign the
    attribute to replace what would be built.
    """

    def __init__(self, build: Callable[[Any], T]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> lazy[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> T | lazy[T]:
        if instance is None:
            return self
        values = instance.__dict__
        if self._name in values:
            return values[self._name]  # type: ignore[no-any-return]
        with instance._build_lock:  # type: ignore[attr-defined]
            if self._name not in values:
                values[self._name] = self._build(instance)
            return values[self._name]  # type: ignore[no-any-return]


class Container:
    """Lazily built, process-wide collaborators."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        # Re-entrant: building a service builds the adapters it needs.
        self._build_lock = threading.RLock()
        self._stripe_lock = threading.Lock()
        self._stripe_client: stripe.StripeClient | None = None
        self._stripe_key_fingerprint: int | None = None

    # ----------------------------------------------------------------------------------------- configuration
    @lazy
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def stripe_secrets(self, force_fetch: bool = False) -> StripeSecrets:
        return load_stripe_secrets(
            self.settings.stripe_secret_arn, self.settings.secret_cache_seconds, force_fetch=force_fetch
        )

    def stripe_api_key(self) -> str:
        return self.stripe_secrets().api_key.get_secret_value()

    def webhook_signing_secrets(self) -> tuple[str, ...]:
        return tuple(s.get_secret_value() for s in self.stripe_secrets().webhook_secrets)

    @lazy
    def clock(self) -> Callable[[], float]:
        """Epoch seconds: the system clock, or in the local stack the Stripe emulator's (tollgate.adapters.clock)."""
        if self.settings.clock_offset_file:
            from tollgate.adapters.clock import OffsetFileClock

            return OffsetFileClock(self.settings.clock_offset_file)
        return time.time

    @lazy
    def access_policy(self) -> AccessPolicy:
        from tollgate.domain.access import AccessPolicy

        return AccessPolicy.from_settings(self.settings)

    # ----------------------------------------------------------------------------------------- clients
    def stripe(self) -> stripe.StripeClient:
        """The StripeClient, rebuilt only when the key in Secrets Manager changed (key rotation)."""
        from tollgate.adapters import stripe_client

        api_key = self.stripe_api_key()
        fingerprint = hash(api_key)
        with self._stripe_lock:
            if self._stripe_client is None or fingerprint != self._stripe_key_fingerprint:
                self._stripe_client = stripe_client.build_stripe_client(self.settings, api_key)
                self._stripe_key_fingerprint = fingerprint
            return self._stripe_client

    @lazy
    def dynamodb(self) -> DynamoDBClient:
        from tollgate.adapters import aws

        return aws.dynamodb_client()

    @lazy
    def sqs(self) -> SQSClient:
        from tollgate.adapters import aws

        return aws.sqs_client()

    @lazy
    def events(self) -> EventBridgeClient:
        from tollgate.adapters import aws

        return aws.events_client()

    @lazy
    def secretsmanager(self) -> SecretsManagerClient:
        from tollgate.adapters import aws

        return aws.secretsmanager_client()

    # ----------------------------------------------------------------------------------------- adapters
    @lazy
    def customer_directory(self) -> DynamoCustomerDirectory:
        from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory

        return DynamoCustomerDirectory(self.dynamodb, self.settings.table_name, clock=self.clock)

    @lazy
    def subscription_repository(self) -> DynamoSubscriptionRepository:
        from tollgate.adapters.dynamodb.subscription_repository import DynamoSubscriptionRepository

        return DynamoSubscriptionRepository(
            self.dynamodb, self.settings.table_name, clock=self.clock, access_policy=self.access_policy
        )

    @lazy
    def session_rate_limiter(self) -> RateLimiter:
        from tollgate.adapters.dynamodb.rate_limiter import DynamoRateLimiter

        return DynamoRateLimiter(
            self.dynamodb, self.settings.table_name, self.settings.session_rate_limit_per_minute, clock=self.clock
        )

    @lazy
    def request_windows(self) -> RequestWindows:
        from tollgate.adapters.dynamodb.request_windows import DynamoRequestWindows

        return DynamoRequestWindows(self.dynamodb, self.settings.table_name)

    @lazy
    def domain_event_publisher(self) -> DomainEventPublisher:
        from tollgate.adapters.eventbridge import EventBridgePublisher, LogOnlyPublisher

        if not self.settings.event_bus_name:
            return LogOnlyPublisher()
        return EventBridgePublisher(self.events, self.settings.event_bus_name)

    @lazy
    def signing_secret_store(self) -> SecretsManagerSigningSecrets:
        from tollgate.adapters.secrets_manager import SecretsManagerSigningSecrets

        return SecretsManagerSigningSecrets(lambda: self.secretsmanager, self.settings.stripe_secret_arn)

    @lazy
    def plan_catalog(self) -> CatalogCache:
        from tollgate.adapters.stripe_api.catalog import StripeCatalogGateway
        from tollgate.services.catalog import CatalogCache

        gateway = StripeCatalogGateway(self.stripe)
        return CatalogCache(self.settings.plan_catalog, lambda: gateway)

    @lazy
    def handler_context(self) -> HandlerContext:
        from tollgate.adapters.stripe_api.reader import SdkStripeReader
        from tollgate.services.webhook_handlers import HandlerContext

        return HandlerContext(
            reader=SdkStripeReader(self.stripe), catalog=self.settings.plan_catalog, owners=self.subscription_repository
        )

    # ----------------------------------------------------------------------------------------- services
    @lazy
    def checkout(self) -> CheckoutService:
        from tollgate.adapters.stripe_api.customers import StripeCustomerGateway
        from tollgate.adapters.stripe_api.sessions import StripeSessionGateway
        from tollgate.services.checkout import CheckoutOptions, CheckoutService

        return CheckoutService(
            options=CheckoutOptions.from_settings(self.settings),
            catalog=self.plan_catalog.get,
            directory=self.customer_directory,
            customers=StripeCustomerGateway(self.stripe),
            subscriptions=self.subscription_repository,
            rate_limiter=self.session_rate_limiter,
            sessions=StripeSessionGateway(self.stripe),
            windows=self.request_windows,
            clock=self.clock,
            trial_policy=self.settings.trial_policy,
        )

    @lazy
    def portal(self) -> PortalService:
        from tollgate.adapters.stripe_api.provisioning import StripePortalConfigurations
        from tollgate.adapters.stripe_api.sessions import StripeSessionGateway
        from tollgate.services.portal import PortalOptions, PortalService
        from tollgate.services.provisioning import ProvisionedPortal

        owner = self.settings.stripe_resource_owner
        configurations = StripePortalConfigurations(self.stripe)
        return PortalService(
            options=PortalOptions.from_settings(self.settings),
            provisioned_configuration=ProvisionedPortal(lambda: configurations.owned_configuration(owner)),
            directory=self.customer_directory,
            subscriptions=self.subscription_repository,
            rate_limiter=self.session_rate_limiter,
            sessions=StripeSessionGateway(self.stripe),
            windows=self.request_windows,
            clock=self.clock,
        )

    @lazy
    def plan_changes(self) -> PlanChangeService:
        from tollgate.adapters.dynamodb.pending_changes import DynamoPendingChangeStore
        from tollgate.adapters.stripe_api.plan_changes import StripePlanChangeGateway
        from tollgate.domain.plan_changes import TokenSigner
        from tollgate.services.plan_changes import PlanChangeService

        return PlanChangeService(
            catalog=self.plan_catalog.get,
            directory=self.customer_directory,
            subscriptions=self.subscription_repository,
            access_policy=self.access_policy,
            rate_limiter=self.session_rate_limiter,
            gateway=StripePlanChangeGateway(self.stripe),
            store=DynamoPendingChangeStore(self.dynamodb, self.settings.table_name),
            signer=TokenSigner.from_stripe_key(self.stripe_api_key),
            clock=self.clock,
        )

    @lazy
    def cancellations(self) -> CancellationService:
        from tollgate.adapters.stripe_api.cancellations import StripeCancellationGateway
        from tollgate.services.cancellations import CancellationService

        return CancellationService(
            directory=self.customer_directory,
            subscriptions=self.subscription_repository,
            gateway=StripeCancellationGateway(self.stripe),
            rate_limiter=self.session_rate_limiter,
            windows=self.request_windows,
            clock=self.clock,
        )

    @lazy
    def invoices(self) -> InvoiceService:
        from tollgate.adapters.dynamodb.rate_limiter import DynamoRateLimiter
        from tollgate.adapters.stripe_api.invoices import StripeInvoiceGateway
        from tollgate.services.invoices import InvoiceService

        # Page reads share the status checks' per-user limit (each costs Stripe calls), in their own window.
        limiter = DynamoRateLimiter(
            self.dynamodb,
            self.settings.table_name,
            self.settings.status_check_rate_limit_per_minute,
            clock=self.clock,
            scope="invoices",
        )
        return InvoiceService(
            directory=self.customer_directory, gateway=StripeInvoiceGateway(self.stripe), rate_limiter=limiter
        )

    @lazy
    def billing_status(self) -> BillingStatusService:
        from tollgate.services.billing_status import BillingStatusService

        return BillingStatusService(
            self.subscription_repository, self.customer_directory, self.access_policy, clock=self.clock
        )

    @lazy
    def customer_accounts(self) -> CustomerAccountService:
        from tollgate.adapters.stripe_api.customer_accounts import StripeCustomerAccountGateway
        from tollgate.services.customer_accounts import CustomerAccountService

        return CustomerAccountService(
            directory=self.customer_directory,
            subscriptions=self.subscription_repository,
            stripe=StripeCustomerAccountGateway(self.stripe),
            clock=self.clock,
        )

    @lazy
    def subscription_writer(self) -> SubscriptionWriter:
        from tollgate.adapters.dynamodb.meter_errors import DynamoMeterErrorLog
        from tollgate.services.subscription_writes import SubscriptionWriter

        return SubscriptionWriter(
            repository=self.subscription_repository,
            directory=self.customer_directory,
            meter_errors=DynamoMeterErrorLog(self.dynamodb, self.settings.table_name, clock=self.clock),
        )

    @lazy
    def success_page(self) -> SuccessPageCheck:
        from tollgate.adapters.dynamodb.rate_limiter import DynamoRateLimiter
        from tollgate.services.success_page import SuccessPageCheck

        limiter = DynamoRateLimiter(
            self.dynamodb,
            self.settings.table_name,
            self.settings.status_check_rate_limit_per_minute,
            clock=self.clock,
            scope="status",
        )
        return SuccessPageCheck(
            self.handler_context, self.customer_directory, self.subscription_writer, self.billing_status, limiter
        )

    @lazy
    def webhook(self) -> WebhookService:
        from tollgate.adapters.dynamodb.event_ledger import DynamoEventLedger
        from tollgate.services.webhook import WebhookService

        settings = self.settings
        return WebhookService(
            signing_secrets=self.webhook_signing_secrets,
            ledger=DynamoEventLedger(self.dynamodb, settings.table_name, clock=self.clock),
            writer=self.subscription_writer,
            context=self.handler_context,
            expected_livemode=lambda: self.stripe_secrets().key_is_live(),
            tolerance_seconds=settings.webhook_tolerance_seconds,
            max_body_bytes=settings.webhook_max_body_bytes,
            clock=self.clock,
        )

    @lazy
    def stripe_event_bridge(self) -> StripeEventBridge:
        from tollgate.services.stripe_event_bridge import StripeEventBridge

        settings = self.settings
        return StripeEventBridge(
            webhook=self.webhook,
            trusted_sources=settings.stripe_event_sources,
            max_body_bytes=settings.webhook_max_body_bytes,
            clock=self.clock,
        )

    @lazy
    def usage_reporter(self) -> UsageReporter:
        from tollgate import errors
        from tollgate.adapters import aws
        from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
        from tollgate.adapters.dynamodb.usage_ledger import DynamoUsageLedger
        from tollgate.adapters.sqs import DeadLetterParking
        from tollgate.adapters.stripe_api.meter_transport import StreamTransport, V1Transport
        from tollgate.observability import metrics
        from tollgate.ports.stripe import MeterTransport
        from tollgate.services.usage_reporter import UsageReporter

        settings = self.settings
        if not settings.usage_dlq_url:
            raise errors.ConfigurationError("invalid configuration: USAGE_DLQ_URL is required by the usage reporter")
        transport: MeterTransport = (
            StreamTransport(self.stripe, clock=self.clock)
            if settings.usage_transport == "stream"
            else V1Transport(self.stripe)
        )
        # The usage function's only DynamoDB client (ledger and customer lookups), with a connection pool as large
        # as the ledger's thread pool, so no second client at cold start.
        dynamodb = aws.dynamodb_client(max_pool_connections=settings.usage_ledger_concurrency)
        return UsageReporter(
            ledger=DynamoUsageLedger(dynamodb, settings.table_name, clock=self.clock),
            transport=transport,
            directory=DynamoCustomerDirectory(dynamodb, settings.table_name, clock=self.clock),
            parking=DeadLetterParking(self.sqs, settings.usage_dlq_url),
            metrics=metrics,
            known_meters=settings.usage_meter_event_names,
            ledger_concurrency=settings.usage_ledger_concurrency,
            clock=self.clock,
        )

    @lazy
    def domain_event_relay(self) -> DomainEventRelay:
        from tollgate.adapters.dynamodb import stream_records
        from tollgate.observability import metrics
        from tollgate.services.domain_event_relay import DomainEventRelay

        return DomainEventRelay(
            self.domain_event_publisher,
            decode=stream_records.item_change,
            sequence_of=stream_records.sequence_number,
            metrics=metrics,
        )

    @lazy
    def event_replay(self) -> EventReplay:
        from tollgate.adapters.stripe_api.undelivered_events import SdkUndeliveredEvents
        from tollgate.services.event_replay import EventReplay

        return EventReplay(SdkUndeliveredEvents(self.stripe), self.webhook, self.clock)

    @lazy
    def usage_drift(self) -> UsageDriftCheck:
        from tollgate.adapters.dynamodb.drift_findings import DynamoDriftFindings
        from tollgate.adapters.dynamodb.usage_ledger import DynamoUsageTotals
        from tollgate.adapters.stripe_api.meter_totals import SdkMeterTotals
        from tollgate.adapters.stripe_api.meter_transport import V1Transport
        from tollgate.observability import metrics
        from tollgate.services.usage_drift import UsageDriftCheck

        table = self.settings.table_name
        return UsageDriftCheck(
            totals=DynamoUsageTotals(self.dynamodb, table),
            meters=SdkMeterTotals(self.stripe),
            findings=DynamoDriftFindings(self.dynamodb, table),
            # v1 for repairs: a handful of events, each answered on its own (a stream answers for the batch).
            transport=lambda: V1Transport(self.stripe),
            metrics=metrics,
            clock=self.clock,
        )

    @lazy
    def reconciler(self) -> Reconciler:
        from tollgate.adapters.stripe_api.subscription_source import SdkSubscriptionSource
        from tollgate.services.reconcile import Reconciler

        return Reconciler(SdkSubscriptionSource(self.stripe), self.subscription_writer, self.settings.plan_catalog)

    @lazy
    def provisioner(self) -> Provisioner:
        from tollgate.adapters.stripe_api.provisioning import StripeProvisioningAccount
        from tollgate.adapters.stripe_client import PINNED_API_VERSION
        from tollgate.services.provisioning import Provisioner

        return Provisioner(
            account=StripeProvisioningAccount(self.stripe),
            secrets=self.signing_secret_store,
            api_version=PINNED_API_VERSION,
            key_is_live=lambda: self.stripe_secrets(force_fetch=True).key_is_live(),
            clock=self.clock,
        )

    @lazy
    def stack_provisioning(self) -> StackProvisioning:
        from tollgate.services.provisioning import StackProvisioning

        return StackProvisioning(self.provisioner, self.signing_secret_store.api_key_present)


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


def register_snapstart_hooks(*typical: str) -> bool:
    """With SnapStart on, build before the snapshot what the function's typical request uses (the container
    attributes named in ``typical``, plus the secrets provider's client), and after each restore forget the cached
    secrets and reseed ``random``. Does nothing (returns False) on an ordinary cold start or locally."""
    from tollgate.adapters.secrets_manager import forget_cached_secrets, prepare_secrets_provider
    from tollgate.adapters.snapstart import register_hooks

    def before_snapshot() -> None:
        built = container()
        prepare_secrets_provider()
        for name in typical:
            getattr(built, name)

    def after_restore() -> None:
        forget_cached_secrets()
        random.seed()  # from the OS: restored copies must not share the snapshot's state

    return register_hooks(before_snapshot, after_restore)
