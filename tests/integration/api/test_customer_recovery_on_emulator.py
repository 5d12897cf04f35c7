"""A user's customer creation recovers from a creation key Stripe will never honour again, on the emulator."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import boto3
import pytest

from tests.integration.api.conftest import Stack
from tollgate.services import customers


def checkout(stack: Stack, user_id: str, client_key: str, **claims: str) -> dict[str, Any]:
    return stack.checkout(
        "POST",
        "/checkout/sessions",
        body={"plan": "starter"},
        claims={"sub": user_id, **claims},
        headers={"Idempotency-Key": client_key},
    )


def store_a_500_for_the_next_customer_create(stack: Stack) -> None:
    # record=True: the endpoint itself failed, so Stripe saves the 500 as the key's answer and replays it.
    stack.emulator.faults.add("/v1/customers", method="POST", status=500, should_retry=False, record=True)


def creations(stack: Stack) -> list[dict[str, Any]]:
    return stack.stripe_requests("POST", "/v1/customers")


def users_customers(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    return [c for c in stack.emulator.store.all("customer") if c["metadata"].get("app_user_id") == user_id]


def test_a_stored_500_for_the_creation_key_does_not_block_the_users_retry(stack: Stack) -> None:
    # Given Stripe stores a 500 as the answer to the user's first customer creation
    store_a_500_for_the_next_customer_create(stack)
    key = "action-" + uuid.uuid4().hex
    # When the user's checkout fails and the frontend retries it
    first = checkout(stack, "user-500", key)
    retry = checkout(stack, "user-500", key)
    # Then the first answer says "retry" and the retry opens a session for the one customer, made under a new key
    assert (first["statusCode"], int(first["headers"]["Retry-After"])) == (503, 1)
    assert retry["statusCode"] == 200, retry["body"]
    assert set(json.loads(retry["body"])) == {"id", "url"}
    assert [(c["idempotency_key"], c["status"]) for c in creations(stack)] == [
        ("customer:user-500:0", 500),
        ("customer:user-500:1", 200),
    ]
    [customer] = users_customers(stack, "user-500")
    assert stack.container.customer_directory.customer_for_user("user-500") == customer["id"]


def test_control_a_fixed_creation_key_fails_the_retry_with_the_replayed_500(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the old fixed key (one per user, whatever happened to it)
    monkeypatch.setattr(customers, "customer_idempotency_key", lambda user_id, generation=0: f"customer:{user_id}")
    store_a_500_for_the_next_customer_create(stack)
    key = "action-" + uuid.uuid4().hex
    # When the user retries, Then Stripe replays the stored 500 and the user still has no customer
    assert [checkout(stack, "user-fixed", key)["statusCode"] for _ in range(2)] == [503, 503]
    assert [c["replayed"] for c in creations(stack)] == [False, True]
    assert users_customers(stack, "user-fixed") == []


def test_a_creation_key_reused_with_other_parameters_is_retired(stack: Stack) -> None:
    # Given an earlier attempt used the user's generation-0 key without the email (its answer never arrived), and
    # the user's email is verified now: the same key with different parameters is Stripe's idempotency_error
    stack.container.stripe().v1.customers.create(
        params={"metadata": {"app_user_id": "user-ver"}}, options={"idempotency_key": "customer:user-ver:0"}
    )
    claims = {"email": "ver@example.test", "email_verified": "true"}
    key = "action-" + uuid.uuid4().hex
    # When the user checks out and retries
    first = checkout(stack, "user-ver", key, **claims)
    retry = checkout(stack, "user-ver", key, **claims)
    # Then the refused key is retired and the retry succeeds under the next one (never a lookup by email)
    assert (first["statusCode"], retry["statusCode"]) == (503, 200)
    assert [c["idempotency_key"] for c in creations(stack)][-2:] == ["customer:user-ver:0", "customer:user-ver:1"]
    assert stack.stripe_requests("GET", "/v1/customers") == []
    linked = stack.container.customer_directory.customer_for_user("user-ver")
    assert stack.emulator.store.get(linked, "customer")["email"] == "ver@example.test"


def test_fifty_concurrent_first_checkouts_behind_a_stored_500_create_one_customer(stack: Stack) -> None:
    # Given a stored 500 for the first creation key and 50 first checkouts of one new user at once
    store_a_500_for_the_next_customer_create(stack)
    start = Barrier(50)

    def one(i: int) -> list[int]:
        start.wait()
        key = f"action-{i}"
        statuses = [checkout(stack, "user-storm", key)["statusCode"]]
        while statuses[-1] == 503 and len(statuses) < 3:  # the frontend retries what 503 says to retry
            statuses.append(checkout(stack, "user-storm", key)["statusCode"])
        return statuses

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(one, range(50)))
    # Then every request ends in a session, only 503s came before, and exactly one customer and one mapping exist
    assert all(o[-1] == 200 and set(o[:-1]) <= {503} for o in outcomes), outcomes
    created = [c for c in creations(stack) if c["status"] == 200 and not c["replayed"]]
    assert len(created) == 1
    [customer] = users_customers(stack, "user-storm")
    items = boto3.client("dynamodb").scan(TableName=stack.container.settings.table_name)["Items"]
    assert sorted(i["pk"]["S"] for i in items if i["sk"]["S"] in ("CUSTOMER", "USER")) == [
        f"CUSTOMER#{customer['id']}",
        "USER#user-storm",
    ]
    assert {r["params"]["customer"] for r in stack.stripe_requests("POST", "/v1/checkout/sessions")} == {customer["id"]}


def first_checkout(stack: Stack, user_id: str) -> str:
    response = checkout(stack, user_id, "action-" + uuid.uuid4().hex)
    assert response["statusCode"] == 200, response["body"]
    customer_id = stack.container.customer_directory.customer_for_user(user_id)
    assert customer_id
    return str(customer_id)


def delete_in_stripe(stack: Stack, customer_id: str) -> None:
    stack.container.stripe().v1.customers.delete(customer_id)


def reverse_item(stack: Stack, customer_id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": "USER"}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=stack.container.settings.table_name, Key=key)[
        "Item"
    ]
    return item


def test_after_customer_deleted_the_portal_is_404_and_the_next_checkout_gets_a_new_customer(stack: Stack) -> None:
    # Given a user whose customer was created by a checkout, then deleted in Stripe, and the webhook's effect applied
    old = first_checkout(stack, "user-del")
    delete_in_stripe(stack, old)
    stack.container.customer_directory.mark_deleted(old)
    stack.emulator.request_log.clear()
    # When they open the portal, Then "no billing account" (404), without a Stripe call
    portal = stack.portal("POST", "/portal/sessions", claims={"sub": "user-del"})
    assert portal["statusCode"] == 404
    assert "checkout" in json.loads(portal["body"])["error"]["reason"]
    assert stack.stripe_requests("POST", "/v1/billing_portal/sessions") == []
    # When they check out again
    response = checkout(stack, "user-del", "action-" + uuid.uuid4().hex)
    # Then a new customer is created under the next generation and the session is for it
    assert response["statusCode"] == 200, response["body"]
    new = stack.container.customer_directory.customer_for_user("user-del")
    assert new is not None
    assert new != old
    assert [c["idempotency_key"] for c in creations(stack)] == ["customer:user-del:1"]
    [session_call] = stack.stripe_requests("POST", "/v1/checkout/sessions")
    assert (session_call["params"]["customer"], session_call["status"]) == (new, 200)
    # And the user is relinked both ways; the deleted customer's item stays as history
    assert stack.container.customer_directory.user_for_customer(new) == "user-del"
    assert (reverse_item(stack, old)["user_id"]["S"], reverse_item(stack, old)["deleted"]) == (
        "user-del",
        {"BOOL": True},
    )
    # And the portal works again, for the new customer
    assert stack.portal("POST", "/portal/sessions", claims={"sub": "user-del"})["statusCode"] == 200
    assert stack.stripe_requests("POST", "/v1/billing_portal/sessions")[0]["params"]["customer"] == new


def test_a_checkout_recovers_when_stripe_deleted_the_customer_before_the_webhook_arrived(stack: Stack) -> None:
    # Given a user's customer deleted in Stripe, with no webhook applied
    old = first_checkout(stack, "user-early")
    delete_in_stripe(stack, old)
    stack.emulator.request_log.clear()
    # When they check out
    response = checkout(stack, "user-early", "action-" + uuid.uuid4().hex)
    # Then Stripe's resource_missing for the old customer leads to a new customer and a session for it
    assert response["statusCode"] == 200, response["body"]
    new = stack.container.customer_directory.customer_for_user("user-early")
    first, second = stack.stripe_requests("POST", "/v1/checkout/sessions")
    assert (first["params"]["customer"], first["status"]) == (old, 404)
    assert (second["params"]["customer"], second["status"]) == (new, 200)
    assert [c["idempotency_key"] for c in creations(stack)] == ["customer:user-early:1"]
    assert reverse_item(stack, old)["deleted"] == {"BOOL": True}


def test_the_portal_answers_404_when_stripe_deleted_the_customer_before_the_webhook_arrived(stack: Stack) -> None:
    # Given a user's customer deleted in Stripe, with no webhook applied
    old = first_checkout(stack, "user-early-portal")
    delete_in_stripe(stack, old)
    # When they open the portal, Then "no billing account" (404, not a 502), and the deletion is recorded
    response = stack.portal("POST", "/portal/sessions", claims={"sub": "user-early-portal"})
    assert response["statusCode"] == 404
    assert "checkout" in json.loads(response["body"])["error"]["reason"]
    assert stack.container.customer_directory.customer_for_user("user-early-portal") is None
    assert reverse_item(stack, old)["deleted"] == {"BOOL": True}


def test_control_a_mapping_that_ignores_deletion_keeps_failing_the_users_checkout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the old behaviour: the mapping is read without its deletion mark, and Stripe's resource_missing is
    # just an upstream error
    from contextlib import nullcontext

    from tollgate.adapters.stripe_api import sessions as checkout_module
    from tollgate.domain.customers import UserRecord

    monkeypatch.setattr(UserRecord, "live_customer_id", property(lambda r: r.customer_id))
    monkeypatch.setattr(checkout_module, "customer_missing_as_domain_error", nullcontext)
    old = first_checkout(stack, "user-naive")
    delete_in_stripe(stack, old)
    stack.container.customer_directory.mark_deleted(old)
    # When the user checks out again (twice), Then every attempt goes to the deleted customer and fails
    statuses = [checkout(stack, "user-naive", "action-" + uuid.uuid4().hex)["statusCode"] for _ in range(2)]
    assert 200 not in statuses
    assert {r["params"]["customer"] for r in stack.stripe_requests("POST", "/v1/checkout/sessions")} == {old}
