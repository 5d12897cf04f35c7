"""The AWS adapter: clients with explicit timeouts and retries, and botocore errors translated at the boundary
(throttling and outages become PersistenceUnavailable; a failed condition stays a ClientError the caller handles)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tollgate import errors
from tollgate.adapters.aws import AWS_CLIENT_CONFIG, THROTTLING_CODES, aws_errors, dynamodb_client, error_code


def test_clients_have_explicit_timeouts_and_standard_retries() -> None:
    client = dynamodb_client()
    assert client.meta.config.connect_timeout == 2
    assert client.meta.config.read_timeout == 3
    # botocore counts retries in max_attempts: 3 retries = at most 4 attempts per call
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_clients_follow_the_local_stack_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the local stack's endpoint in the environment
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    # Then the same adapter code talks to it
    assert dynamodb_client().meta.endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_and_service_faults_become_persistence_unavailable(code: str) -> None:
    # Given DynamoDB answering with a throttling or service error
    client = boto3.client("dynamodb", config=AWS_CLIENT_CONFIG)
    with Stubber(client) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=400)
        # When the adapter makes the call / Then the caller sees a retryable domain error
        with pytest.raises(errors.PersistenceUnavailable) as raised, aws_errors("get_item"):
            client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    assert isinstance(raised.value.__cause__, ClientError)
    assert error_code(raised.value.__cause__) == code


def test_other_exceptions_are_not_disguised() -> None:
    with pytest.raises(ValueError, match="bug"), aws_errors("anything"):
        raise ValueError("bug")
