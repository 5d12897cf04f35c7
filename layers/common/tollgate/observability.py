"""One place that creates the logger, tracer and metrics every function shares.

The logger never receives secrets, tokens, emails or raw payloads: callers log identifiers and outcomes as
keyword context. The tracer does not capture responses, so Stripe objects and PII stay out of traces.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(log_uncaught_exceptions=True)
tracer = Tracer()
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
