"""The local stack for e2e tests: started once per test session (per xdist worker), stopped at the end.

``local_stack`` is a ``devstack.stack.LocalStack``: ``api_url``, ``stripe_url``, ``aws_endpoint``,
``usage_queue_url``, ``dlq_url``, ``token_for(user_id, email=None)``, ``dev_token()``, ``emulator`` (the in-process
StripeEmulator), ``client(service)`` (boto3 against the local AWS stand-ins) and ``functions`` (invocation counts).
Nothing needs to run beforehand: moto, the Stripe emulator, the HTTP API and the function workers all start here on
free 127.0.0.1 ports.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack, StackConfig


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    # Short webhook retry backoff so tests see retries within seconds; no endpoints.json (a developer's make dev
    # may be running and owns .devstack/).
    stack = LocalStack(StackConfig(state_dir=None, webhook_retry_base_seconds=0.5))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
