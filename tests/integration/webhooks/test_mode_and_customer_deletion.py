"""Events of the other mode are acknowledged and ignored; ``customer.deleted`` is persisted on the mapping."""

from __future__ import annotations

import boto3
import pytest
from pydantic import SecretStr

from tests.integration.webhooks.harness import Harness, build_harness, load_event
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
from tollgate.adapters.secrets_manager import StripeSecrets


@pytest.fixture
def h(billing_table: str) -> Harness:
    return build_harness(boto3.client("dynamodb"), billing_table)


def test_a_test_mode_event_reaching_a_live_key_is_acknowledged_ignored_and_writes_nothing(
    h: Harness, billing_table: str
) -> None:
    # Given the webhook runs with a live key
    h.service.expected_livemode = lambda: True
    event = load_event("customer.subscription.updated")
    assert event["livemode"] is False
    # When a test-mode event arrives (correctly signed)
    outcome = h.deliver(event)
    # Then 2xx, ignored: no ledger entry, no state, no domain event
    assert outcome.result == "ignored_mode"
    assert boto3.client("dynamodb").scan(TableName=billing_table)["Count"] == 0
    assert h.bus.events == []


def test_an_event_of_the_keys_own_mode_is_processed(h: Harness) -> None:
    h.service.expected_livemode = lambda: False
    assert h.deliver(load_event("customer.subscription.updated")).result == "applied"


def test_the_mode_is_read_from_the_key_kind() -> None:
    live = "sk" + "_live_" + "x" * 24
    restricted_live = "rk" + "_live_" + "x" * 24
    test = "sk" + "_test_" + "x" * 24
    modes = [StripeSecrets(api_key=SecretStr(key)).key_is_live() for key in (live, restricted_live, test)]
    assert modes == [True, True, False]


def test_customer_deleted_marks_the_mapping_and_never_creates_one(h: Harness, billing_table: str) -> None:
    client = boto3.client("dynamodb")
    directory = DynamoCustomerDirectory(client, billing_table)
    h.service.writer.directory = directory
    directory.link("user-123", "cus_TestProjection01")
    # When Stripe says the customer was deleted
    h.deliver(load_event("customer.deleted"))
    item = client.get_item(
        TableName=billing_table, Key={"pk": {"S": "CUSTOMER#cus_TestProjection01"}, "sk": {"S": "USER"}}
    )["Item"]
    # Then the mapping records it (and keeps the user, for support and audit)
    assert item["deleted"] == {"BOOL": True}
    assert item["user_id"] == {"S": "user-123"}
    # And deleting an unknown customer creates nothing
    directory.mark_deleted("cus_unknown")
    assert "Item" not in client.get_item(
        TableName=billing_table, Key={"pk": {"S": "CUSTOMER#cus_unknown"}, "sk": {"S": "USER"}}
    )


def test_meter_error_report_is_stored_under_the_usage_packages_key(h: Harness, billing_table: str) -> None:
    from tollgate.adapters.dynamodb.meter_errors import DynamoMeterErrorLog
    from tollgate.observability import metrics

    client = boto3.client("dynamodb")
    h.service.writer.meter_errors = DynamoMeterErrorLog(client, billing_table, clock=h.clock)
    metrics.clear_metrics()
    event = load_event("v1.billing.meter.error_report_triggered")
    # When Stripe reports invalid meter events
    assert h.deliver(event).result == "applied"
    # Then each sample is stored as METER_ERROR#{identifier} / REPORT#{event id} and the alarm's metric counted
    item = client.get_item(
        TableName=billing_table, Key={"pk": {"S": "METER_ERROR#usage-42"}, "sk": {"S": f"REPORT#{event['id']}"}}
    ).get("Item")
    assert item is not None
    assert item["error_code"] == {"S": "meter_event_no_customer_defined"}
    assert metrics.metric_set["MeterErrorReports"]["Value"] == [1.0]
