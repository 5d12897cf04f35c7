"""One place that creates the logger, tracer and metrics every function shares.

The logger never receives secrets, tokens, emails or raw payloads: callers log identifiers and outcomes as
keyword context. The tracer does not capture responses, so Stripe objects and PII stay out of traces.
"""

from __future__ import annotations

from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(log_uncaught_exceptions=True)
# Only botocore at init: X-Ray's patch_all imports and wraps a dozen libraries (requests, httpx, sqlite3, ...), a
# tenth of a cold start; the Stripe client patches requests when it is first built.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()


class MetricName(StrEnum):
    """Every metric the product emits (namespace ``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service``).

    The template's alarms and dashboard name these and only these (tests/template/test_metric_names.py).
    """

    # business counters
    CHECKOUT_SESSIONS_CREATED = "CheckoutSessionsCreated"
    SUBSCRIPTION_ACTIVATIONS = "SubscriptionActivations"
    SUBSCRIPTION_CANCELLATIONS = "SubscriptionCancellations"
    PAYMENT_FAILURES = "PaymentFailures"
    # webhook
    WEBHOOK_APPLIED = "WebhookApplied"
    WEBHOOK_DUPLICATE = "WebhookDuplicate"
    WEBHOOK_REJECTED = "WebhookRejected"
    WEBHOOK_SIGNATURE_FAILED = "WebhookSignatureFailed"
    WEBHOOK_UNPROCESSABLE = "WebhookUnprocessable"
    WEBHOOK_UNHANDLED_TYPE = "WebhookUnhandledType"
    WEBHOOK_WRONG_MODE = "WebhookWrongMode"
    WEBHOOK_LAG_SECONDS = "WebhookLagSeconds"
    WEBHOOK_FETCH_LATEST = "WebhookFetchLatest"
    WEBHOOK_LINK_CONFLICT = "WebhookLinkConflict"
    METER_ERROR_REPORTS = "MeterErrorReports"
    # Stripe events through EventBridge (the webhook's processing after the trust check)
    STRIPE_EVENT_SOURCE_REFUSED = "StripeEventSourceRefused"
    # domain events
    DOMAIN_EVENTS_PUBLISHED = "DomainEventsPublished"
    DOMAIN_EVENT_RELAY_FAILURES = "DomainEventRelayFailures"
    # usage
    USAGE_SENT = "UsageSent"
    USAGE_DUPLICATE = "UsageDuplicate"
    USAGE_RETRIED = "UsageRetried"
    USAGE_PARKED = "UsageParked"
    USAGE_CONFLICT = "UsageConflict"
    USAGE_NEEDS_RECONCILIATION = "UsageNeedsReconciliation"
    USAGE_OLDEST_MESSAGE_AGE_SECONDS = "UsageOldestMessageAgeSeconds"
    USAGE_DRIFT = "UsageDrift"


__all__ = ["MetricName", "MetricUnit", "logger", "metrics", "tracer"]
