"""The AWS adapter against an endpoint nothing listens on: a connection failure becomes PersistenceUnavailable."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from tollgate import errors
from tollgate.adapters.aws import AWS_CLIENT_CONFIG, aws_errors


def test_an_unreachable_endpoint_becomes_persistence_unavailable() -> None:
    # Given a client that cannot connect (nothing listens on port 9), one attempt to keep the test fast
    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        config=AWS_CLIENT_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1})),
    )
    with pytest.raises(errors.PersistenceUnavailable) as raised, aws_errors("get_item"):
        client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    assert isinstance(raised.value.__cause__, BotoCoreError)
