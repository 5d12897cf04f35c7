"""The AWS adapter on moto: a failed condition is the caller's to decide, never disguised."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tollgate.adapters.aws import aws_errors, dynamodb_client, error_code


def test_a_failed_condition_reaches_the_caller_unchanged(billing_table: str) -> None:
    # Given an item that exists in the real (moto) table
    client = dynamodb_client()
    item = {"pk": {"S": "EVENT#evt_1"}, "sk": {"S": "EVENT"}}
    client.put_item(TableName=billing_table, Item=item)
    # When a conditional create collides
    with pytest.raises(ClientError) as raised, aws_errors("claim_event"):
        client.put_item(TableName=billing_table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    # Then the use case gets the ClientError to decide (a duplicate is not an outage)
    assert error_code(raised.value) == "ConditionalCheckFailedException"
