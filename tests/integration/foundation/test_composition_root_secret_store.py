"""The composition root reads the Stripe secret from (moto) Secrets Manager, shaped as the README tells operators."""

from __future__ import annotations

import json

import boto3

from tests.unit.foundation.test_composition_root import make_key
from tollgate import bootstrap
from tollgate.config import Settings


def test_stripe_client_from_a_real_secret_store(aws: None, fresh_container: bootstrap.Container) -> None:
    # Given the Stripe secret in (moto) Secrets Manager, shaped as the README tells operators to write it
    key = make_key()
    created = boto3.client("secretsmanager").create_secret(
        Name="tollgate/stripe", SecretString=json.dumps({"api_key": key, "webhook_secrets": ["w1", "w2"]})
    )
    container = bootstrap.Container(
        Settings(table_name="tollgate-test", stripe_secret_arn=created["ARN"], secret_cache_seconds=300)
    )
    # When the container builds its Stripe client
    client = container.stripe()
    # Then it holds the key from the store (never from the environment), and the signing secrets are a list
    assert client._requestor.api_key == key  # type: ignore[attr-defined]
    assert [s.get_secret_value() for s in container.stripe_secrets().webhook_secrets] == ["w1", "w2"]
    assert key not in repr(container.stripe_secrets())
