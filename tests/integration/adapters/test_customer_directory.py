"""The customer directory on a moto table built from template.yaml, and one-customer-per-user creation."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from tests.support.moto_clients import AtomicDynamoDB
from tollgate import errors
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
from tollgate.domain.customers import CreationClaim, UserRecord, customer_idempotency_key
from tollgate.errors import CreationKeyUnusable
from tollgate.services.customers import CreationWait, ensure_customer


class IdempotentFakeStripeCustomers:
    """Stripe's v1 idempotency as far as customer creation needs it: a key replays its first result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_key: dict[str, str] = {}
        self.calls: list[dict[str, Any]] = []
        self.created: list[str] = []

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str:
        time.sleep(0.05)  # a Stripe round trip: the window in which racing requests overlap
        with self._lock:
            self.calls.append({"user_id": user_id, "email": email, "key": idempotency_key})
            if idempotency_key not in self.by_key:
                customer_id = "cus_" + uuid.uuid4().hex[:14]
                self.by_key[idempotency_key] = customer_id
                self.created.append(customer_id)
            return self.by_key[idempotency_key]


@pytest.fixture
def directory(billing_table: str) -> DynamoCustomerDirectory:
    return DynamoCustomerDirectory(AtomicDynamoDB(boto3.client("dynamodb")), billing_table)


def mapping_items(table: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return [i for i in items if i["sk"]["S"] in ("CUSTOMER", "USER")]


def test_link_stores_the_mapping_both_ways(directory: DynamoCustomerDirectory, billing_table: str) -> None:
    # Given a user and a customer with no mapping
    assert directory.customer_for_user("user-a") is None
    # When they are linked (twice: links are idempotent)
    directory.link("user-a", "cus_A")
    directory.link("user-a", "cus_A")
    # Then both directions resolve, from exactly two items
    assert directory.customer_for_user("user-a") == "cus_A"
    assert directory.user_for_customer("cus_A") == "user-a"
    keys = sorted((i["pk"]["S"], i["sk"]["S"]) for i in mapping_items(billing_table))
    assert keys == [("CUSTOMER#cus_A", "USER"), ("USER#user-a", "CUSTOMER")]


def test_a_user_linked_to_another_customer_is_a_conflict(directory: DynamoCustomerDirectory) -> None:
    # Given user A owns cus_A
    directory.link("user-a", "cus_A")
    # When something tries to link A to a different customer, Then it is refused and nothing changes
    with pytest.raises(errors.Conflict):
        directory.link("user-a", "cus_OTHER")
    assert directory.customer_for_user("user-a") == "cus_A"
    assert directory.user_for_customer("cus_OTHER") is None


def test_a_customer_linked_to_another_user_is_a_conflict(directory: DynamoCustomerDirectory) -> None:
    # Given cus_A belongs to user A
    directory.link("user-a", "cus_A")
    # When user B claims cus_A, Then it is refused and B stays unmapped (the transaction is all or nothing)
    with pytest.raises(errors.Conflict):
        directory.link("user-b", "cus_A")
    assert directory.user_for_customer("cus_A") == "user-a"
    assert directory.customer_for_user("user-b") is None


def test_the_creation_claim_is_exclusive_until_its_lease_expires(billing_table: str) -> None:
    # Given a directory whose clock we control
    now = [1_000_000.0]
    directory = DynamoCustomerDirectory(
        boto3.client("dynamodb"), billing_table, clock=lambda: now[0], claim_lease_seconds=30
    )
    # When two requests claim, Then only the first wins
    assert directory.claim_creation("user-a").won is True
    assert directory.claim_creation("user-a").won is False
    # When the lease lapses without a link (the creator died), Then another request may take over
    now[0] += 31
    assert directory.claim_creation("user-a").won is True
    # When the customer is linked, Then no claim ever succeeds again and the claim marker is gone
    directory.link("user-a", "cus_A")
    now[0] += 3600
    assert directory.claim_creation("user-a").won is False
    assert directory.customer_for_user("user-a") == "cus_A"


def test_a_returning_user_costs_no_stripe_call(directory: DynamoCustomerDirectory) -> None:
    # Given a user already mapped
    directory.link("user-a", "cus_A")
    stripe = IdempotentFakeStripeCustomers()
    # When their customer is needed, Then it comes from the table alone
    assert ensure_customer(directory, stripe, "user-a", "a@example.test") == "cus_A"
    assert stripe.calls == []


def test_a_new_user_gets_one_customer_with_the_deterministic_key(directory: DynamoCustomerDirectory) -> None:
    stripe = IdempotentFakeStripeCustomers()
    # When a new user's customer is needed
    customer_id = ensure_customer(directory, stripe, "user-new", None)
    # Then one create call was made with the per-user key, and the mapping points at it
    assert stripe.calls == [{"user_id": "user-new", "email": None, "key": "customer:user-new:0"}]
    assert directory.customer_for_user("user-new") == customer_id
    assert directory.user_for_customer(customer_id) == "user-new"


def run_concurrent_first_requests(strategy: Any, workers: int = 50) -> list[str]:
    start = threading.Barrier(workers)

    def one(_: int) -> str:
        start.wait()
        return strategy()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(workers)))


def test_fifty_concurrent_first_requests_create_exactly_one_customer(
    directory: DynamoCustomerDirectory, billing_table: str
) -> None:
    # Given a brand-new user and a Stripe stand-in with idempotency
    stripe = IdempotentFakeStripeCustomers()
    wait = CreationWait(total_seconds=3.0, poll_seconds=0.02)
    # When 50 requests need the customer at once
    results = run_concurrent_first_requests(lambda: ensure_customer(directory, stripe, "user-c", None, wait=wait))
    # Then exactly one customer exists, every request got it, and the table holds exactly one mapping
    assert len(stripe.created) == 1
    assert set(results) == {stripe.created[0]}
    assert {c["key"] for c in stripe.calls} == {customer_idempotency_key("user-c")}
    assert len(mapping_items(billing_table)) == 2


def test_control_a_naive_lookup_then_create_duplicates_customers(
    directory: DynamoCustomerDirectory, billing_table: str
) -> None:
    # Given the naive flow peers ship: read the mapping, create when absent (a fresh key per call), no claim
    stripe = IdempotentFakeStripeCustomers()
    # Every request reads before any creates, as they do when the reads are faster than a Stripe round trip; made
    # explicit so a loaded machine (slow moto reads) cannot serialise the race away and make this control flaky.
    all_read = threading.Barrier(50)

    def naive() -> str:
        existing = directory.customer_for_user("user-n")
        all_read.wait()
        if existing:
            return existing
        customer_id = stripe.create_customer("user-n", None, uuid.uuid4().hex)
        with contextlib.suppress(errors.TollgateError):
            directory.link("user-n", customer_id)
        return customer_id

    # When 50 requests race, Then the naive flow creates more than one Stripe customer (the harness can fail)
    results = run_concurrent_first_requests(naive)
    assert len(stripe.created) > 1
    assert len(Counter(results)) > 1


class StripeStoringOneFailure(IdempotentFakeStripeCustomers):
    """Stripe that stored a 500 for the first creation key it saw: that key answers the same failure for 24 h."""

    def __init__(self) -> None:
        super().__init__()
        self.spent: set[str] = set()

    def create_customer(self, user_id: str, email: str | None, idempotency_key: str) -> str:
        with self._lock:
            if not self.created and not self.spent:
                self.spent.add(idempotency_key)
            if idempotency_key in self.spent:
                self.calls.append({"user_id": user_id, "email": email, "key": idempotency_key, "spent": True})
                raise CreationKeyUnusable()
        return super().create_customer(user_id, email, idempotency_key)


class FixedKeyDirectory(DynamoCustomerDirectory):
    """Control: the creation key never moves on (the old ``customer:{user_id}``)."""

    def advance_generation(self, user_id: str, seen: int) -> bool:
        return False


class UnconditionalBumpDirectory(DynamoCustomerDirectory):
    """Control: every request that saw a spent key bumps the generation, whatever generation it used."""

    def advance_generation(self, user_id: str, seen: int) -> bool:
        self._client.update_item(
            TableName=self._table,
            Key=self._user_key(user_id),
            UpdateExpression="SET generation = if_not_exists(generation, :zero) + :one REMOVE claim_expires_at",
            ConditionExpression="attribute_not_exists(customer_id)",
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
        )
        return True


def attempt_twice(directory: DynamoCustomerDirectory, stripe: Any, user_id: str) -> tuple[str, str | None]:
    """The user's first checkout and the retry the 503 asks for: what each one got."""
    outcomes: list[str] = []
    for _ in range(2):
        try:
            outcomes.append(ensure_customer(directory, stripe, user_id, None))
        except CreationKeyUnusable:
            outcomes.append("503")
    return outcomes[0], outcomes[1]


def test_a_spent_creation_key_moves_to_the_next_generation_so_the_retry_succeeds(
    directory: DynamoCustomerDirectory,
) -> None:
    # Given Stripe stored a 500 for the user's first creation key
    stripe = StripeStoringOneFailure()
    # When the user's first checkout fails and they retry
    first, retry = attempt_twice(directory, stripe, "user-s")
    # Then the first answer is a retryable 503, the retry gets a customer created with the next generation's key,
    # and that customer is linked
    assert first == "503"
    assert retry == stripe.created[0]
    assert [c["key"] for c in stripe.calls] == [customer_idempotency_key("user-s", 0), "customer:user-s:1"]
    assert directory.lookup("user-s") == UserRecord(retry, 1)


def test_control_a_fixed_creation_key_keeps_failing_the_retry(billing_table: str) -> None:
    # Given the same stored 500, with a key that never moves on
    directory = FixedKeyDirectory(AtomicDynamoDB(boto3.client("dynamodb")), billing_table)
    stripe = StripeStoringOneFailure()
    # When the user retries, Then Stripe replays the failure (for 24 h) and no customer exists
    assert attempt_twice(directory, stripe, "user-s") == ("503", "503")
    assert stripe.created == []


def test_only_the_request_that_used_a_generation_moves_it_on(directory: DynamoCustomerDirectory) -> None:
    # Given A claims and fails with generation 0, and retries (claiming generation 1, its create in flight)
    assert directory.claim_creation("user-g") == CreationClaim(won=True, generation=0)
    assert directory.advance_generation("user-g", 0) is True
    assert directory.claim_creation("user-g") == CreationClaim(won=True, generation=1)
    # When B, a waiter that also used generation 0, reports its spent key late
    assert directory.advance_generation("user-g", 0) is False
    # Then a third request still waits for A and shares A's key: one customer
    assert directory.claim_creation("user-g") == CreationClaim(won=False, generation=1)


def test_control_an_unconditional_bump_splits_concurrent_requests_onto_two_keys(billing_table: str) -> None:
    directory = UnconditionalBumpDirectory(AtomicDynamoDB(boto3.client("dynamodb")), billing_table)
    # Given the same sequence with a bump that ignores which generation failed
    directory.claim_creation("user-g")
    directory.advance_generation("user-g", 0)
    assert directory.claim_creation("user-g") == CreationClaim(won=True, generation=1)
    directory.advance_generation("user-g", 0)
    # Then B's late report steals A's claim and moves the key: a third request creates a second customer
    assert directory.claim_creation("user-g") == CreationClaim(won=True, generation=2)


def test_fifty_concurrent_first_requests_with_a_spent_first_key_still_create_one_customer(
    directory: DynamoCustomerDirectory, billing_table: str
) -> None:
    # Given Stripe stored a 500 for the first key, and 50 requests of one new user racing
    stripe = StripeStoringOneFailure()
    wait = CreationWait(total_seconds=3.0, poll_seconds=0.02)

    def request_with_one_retry() -> str:
        for _ in range(2):
            try:
                return ensure_customer(directory, stripe, "user-r", None, wait=wait)
            except CreationKeyUnusable:
                continue
        return "503 twice"

    # When they all run (each retrying once after a 503)
    results = run_concurrent_first_requests(request_with_one_retry)
    # Then every request ends with the one customer, created under generation 1, and one mapping exists
    assert len(stripe.created) == 1
    assert set(results) == {stripe.created[0]}
    assert {c["key"] for c in stripe.calls if not c.get("spent")} == {"customer:user-r:1"}
    assert len(mapping_items(billing_table)) == 2


def reverse_item(table: str, customer_id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": "USER"}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=table, Key=key)["Item"]
    return item


def test_a_deleted_customer_is_replaced_under_the_next_generation_and_kept_as_history(
    directory: DynamoCustomerDirectory, billing_table: str
) -> None:
    # Given a user whose customer Stripe deleted (the webhook's effect applied)
    stripe = IdempotentFakeStripeCustomers()
    old = ensure_customer(directory, stripe, "user-d", None)
    directory.mark_deleted(old)
    # Then the user counts as having no customer
    assert directory.customer_for_user("user-d") is None
    # When the user's customer is next needed
    new = ensure_customer(directory, stripe, "user-d", None)
    # Then a new customer is created under the next generation's key (the old key would replay the deleted one),
    # the user is relinked, and the old customer's item stays as deleted history
    assert new != old
    assert [c["key"] for c in stripe.calls] == ["customer:user-d:0", "customer:user-d:1"]
    assert directory.lookup("user-d") == UserRecord(new, 1)
    assert directory.user_for_customer(new) == "user-d"
    assert reverse_item(billing_table, old)["user_id"] == {"S": "user-d"}
    assert reverse_item(billing_table, old)["deleted"] == {"BOOL": True}


def test_control_the_old_fixed_key_would_bring_the_deleted_customer_back(
    directory: DynamoCustomerDirectory,
) -> None:
    # Given the same deletion, and a create that reuses the user's first key (Stripe replays it for 24 h)
    stripe = IdempotentFakeStripeCustomers()
    old = ensure_customer(directory, stripe, "user-d", None)
    directory.mark_deleted(old)
    # Then that create answers the deleted customer, and the directory refuses to link it again
    assert stripe.create_customer("user-d", None, customer_idempotency_key("user-d", 0)) == old
    with pytest.raises(errors.Conflict):
        directory.link("user-d", old)


def test_concurrent_checkouts_after_a_deletion_create_one_replacement(
    directory: DynamoCustomerDirectory, billing_table: str
) -> None:
    # Given a user whose customer was deleted
    stripe = IdempotentFakeStripeCustomers()
    old = ensure_customer(directory, stripe, "user-dc", None)
    directory.mark_deleted(old)
    wait = CreationWait(total_seconds=3.0, poll_seconds=0.02)
    # When 20 requests need the customer at once
    results = run_concurrent_first_requests(
        lambda: ensure_customer(directory, stripe, "user-dc", None, wait=wait), workers=20
    )
    # Then exactly one replacement exists and every request got it
    assert len(stripe.created) == 2
    assert set(results) == {stripe.created[1]}
    assert directory.lookup("user-dc").generation == 1


def test_a_subscription_link_is_recorded_on_the_user_and_survives_a_deleted_customer(
    directory: DynamoCustomerDirectory,
) -> None:
    # Given a user whose customer was created by checkout (a plain link: no subscription yet)
    stripe = IdempotentFakeStripeCustomers()
    old = ensure_customer(directory, stripe, "user-t", None)
    assert directory.lookup("user-t").had_subscription is False  # control: a customer alone is no subscription
    # When the webhook links the user from their subscription's metadata (twice: a redelivery)
    directory.link("user-t", old, subscribed=True)
    directory.link("user-t", old, subscribed=True)
    # Then the user's item records it
    assert directory.lookup("user-t").had_subscription is True
    # And after Stripe deleted that customer and checkout replaced it, the record is still the user's
    directory.mark_deleted(old)
    new = ensure_customer(directory, stripe, "user-t", None)
    assert new != old
    assert directory.lookup("user-t") == UserRecord(new, 1, had_subscription=True)
