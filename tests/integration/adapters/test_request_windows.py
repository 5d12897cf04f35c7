"""DynamoRequestWindows on the template's table: a window starts at the first request and lasts its length."""

from __future__ import annotations

import boto3

from tollgate.adapters.dynamodb.request_windows import DynamoRequestWindows


def test_repeats_share_the_first_seen_time_until_the_window_ends(billing_table: str) -> None:
    # Given the store on the billing table
    windows = DynamoRequestWindows(boto3.client("dynamodb"), billing_table)
    # When a request is first seen at t=1,000 (between clock-aligned buckets) and repeated
    assert windows.first_seen("fp-a", 1_000, 300) == 1_000
    # Then every repeat within 300 s of it shares t=1,000, across the multiple-of-300 boundary at t=1,200
    assert windows.first_seen("fp-a", 1_199, 300) == 1_000
    assert windows.first_seen("fp-a", 1_201, 300) == 1_000
    assert windows.first_seen("fp-a", 1_299, 300) == 1_000
    # And another request is independent, and the first one starts anew once its window has ended
    assert windows.first_seen("fp-b", 1_250, 300) == 1_250
    assert windows.first_seen("fp-a", 1_300, 300) == 1_300
    assert windows.first_seen("fp-a", 1_301, 300) == 1_300


def test_the_item_expires_by_ttl_and_holds_no_user_id(billing_table: str) -> None:
    client = boto3.client("dynamodb")
    DynamoRequestWindows(client, billing_table).first_seen("fp-c", 5_000, 60)
    item = client.get_item(TableName=billing_table, Key={"pk": {"S": "REQUEST#fp-c"}, "sk": {"S": "REQUEST"}})["Item"]
    assert set(item) == {"pk", "sk", "first_seen", "expires_at"}
    assert int(item["expires_at"]["N"]) > 5_060
