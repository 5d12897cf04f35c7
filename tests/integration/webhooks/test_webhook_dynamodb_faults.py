"""DynamoDB faults at every call site of the webhook path: the Nth call of each operation fails with throttling,
an internal error or an unexpected conditional failure. Never a 2xx without the state committed, never a lease
without an expiry, and Stripe's retry applies the event exactly once."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.webhooks.harness import Harness, build_harness, ledger_item, load_event
from tollgate import errors
from tollgate.adapters.dynamodb import subscription_repository as repository_module
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
from tollgate.domain.subscriptions import WriteOutcome

pytestmark = pytest.mark.slow

FAULT_CODES = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "InternalServerError",
    "ConditionalCheckFailedException",
)


class FaultyDynamoDB:
    """Wraps the (atomic) client: the `nth` call of `operation` raises `code` instead of reaching DynamoDB."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = client._lock
        self.calls: Counter[str] = Counter()
        self.fault: tuple[str, int, str] | None = None
        self.injected = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if self.fault and self.fault[0] == name and self.fault[1] == self.calls[name]:
                self.injected = True
                code = self.fault[2]
                raise ClientError({"Error": {"Code": code, "Message": "injected"}}, name)
            return attribute(*args, **kwargs)

        return call


@dataclass
class Case:
    """One event kind: how to make a fresh event, and what its committed state looks like."""

    name: str
    make: Callable[[Harness, int], dict[str, Any]]
    committed: Callable[[Harness, dict[str, Any]], bool]
    #: (operation, nth) whose conditional failure is a legitimate answer, not a fault: mark_deleted's condition
    #: fails only when the customer has no mapping, i.e. there is nothing to record.
    answers_by_condition: frozenset[tuple[str, int]] = frozenset()


def _sub_item(event_sub: str, customer: str = "cus_TestProjection01") -> dict[str, Any] | None:
    return (
        boto3.client("dynamodb")
        .get_item(
            TableName="tollgate-test",
            Key={"pk": {"S": f"CUSTOMER#{customer}"}, "sk": {"S": f"SUBSCRIPTION#{event_sub}"}},
        )
        .get("Item")
    )


def subscription_updated(_h: Harness, i: int) -> dict[str, Any]:
    event = load_event("customer.subscription.updated")
    event["id"], event["created"] = f"evt_fault_sub{i:05d}", 1_790_000_000 + i
    event["data"]["object"]["id"] = f"sub_fault{i:05d}"
    return event


def sub_committed(_h: Harness, event: dict[str, Any]) -> bool:
    item = _sub_item(event["data"]["object"]["id"])
    return item is not None and event["id"] in item["watermark"]["S"]


def checkout_completed(h: Harness, i: int) -> dict[str, Any]:
    sub = subscription_updated(h, i)["data"]["object"]
    sub["id"] = f"sub_faultco{i:05d}"
    h.stripe.objects[sub["id"]] = sub
    event = load_event("checkout.session.completed")
    event["id"], event["created"] = f"evt_fault_co{i:05d}", 1_790_000_000 + i
    event["data"]["object"]["subscription"] = sub["id"]
    return event


def checkout_committed(_h: Harness, event: dict[str, Any]) -> bool:
    item = _sub_item(event["data"]["object"]["subscription"])
    return item is not None and event["id"] in item["watermark"]["S"]


def invoice_failed(_h: Harness, i: int) -> dict[str, Any]:
    event = load_event("invoice.payment_failed")
    event["id"], event["created"] = f"evt_fault_in{i:05d}", 1_790_000_000 + i
    event["data"]["object"]["id"] = f"in_fault{i:05d}"
    event["data"]["object"]["parent"]["subscription_details"]["subscription"] = f"sub_faultin{i:05d}"
    return event


def _invoice_item(event: dict[str, Any]) -> dict[str, Any] | None:
    sk = f"INVOICE#{event['data']['object']['id']}#{event['id']}"
    key = {"pk": {"S": "CUSTOMER#cus_TestProjection01"}, "sk": {"S": sk}}
    return boto3.client("dynamodb").get_item(TableName="tollgate-test", Key=key).get("Item")


def announced(h: Harness, event: dict[str, Any]) -> bool:
    h.publish()
    return any(e.stripe_event_id == event["id"] for e in h.bus.events)


def invoice_committed(h: Harness, event: dict[str, Any]) -> bool:
    item = _invoice_item(event)
    return item is not None and event["id"] in item["watermark"]["S"] and announced(h, event)


def trial_ending_after_a_newer_update(h: Harness, i: int) -> dict[str, Any]:
    """A trial notice about a subscription whose newer update was applied first: its state write is stale, so its
    trial.ending is recorded on the event's ledger item instead."""
    event = subscription_updated(h, i)
    event["type"] = "customer.subscription.trial_will_end"
    newer = subscription_updated(h, i)
    newer["id"], newer["created"] = f"evt_fault_subn{i:05d}", event["created"] + 10
    h.deliver(newer)
    return event


def stale_notice_committed(h: Harness, event: dict[str, Any]) -> bool:
    ledger = boto3.client("dynamodb").get_item(
        TableName="tollgate-test", Key={"pk": {"S": f"EVENT#{event['id']}"}, "sk": {"S": "EVENT"}}
    )
    return "Item" in ledger and announced(h, event)


def customer_deleted(h: Harness, i: int) -> dict[str, Any]:
    customer = f"cus_fault{i:05d}"
    assert isinstance(h.service.writer.directory, DynamoCustomerDirectory)
    h.service.writer.directory.link(f"user-fault-{i}", customer)
    event = load_event("customer.deleted")
    event["id"], event["created"] = f"evt_fault_cd{i:05d}", 1_790_000_000 + i
    event["data"]["object"]["id"] = customer
    return event


def deletion_committed(_h: Harness, event: dict[str, Any]) -> bool:
    item = boto3.client("dynamodb").get_item(
        TableName="tollgate-test", Key={"pk": {"S": f"CUSTOMER#{event['data']['object']['id']}"}, "sk": {"S": "USER"}}
    )["Item"]
    return item.get("deleted") == {"BOOL": True}


CASES = [
    Case("subscription.updated (one write)", subscription_updated, sub_committed),
    Case("checkout.session.completed (leased, fetch)", checkout_completed, checkout_committed),
    Case("invoice.payment_failed (one write, announcement in it)", invoice_failed, invoice_committed),
    Case(
        "customer.deleted (leased, directory)",
        customer_deleted,
        deletion_committed,
        answers_by_condition=frozenset({("update_item", 1)}),
    ),
    Case(
        "trial_will_end stale (announcement on the ledger)",
        trial_ending_after_a_newer_update,
        stale_notice_committed,
    ),
]


@dataclass
class FaultReport:
    injected: int = 0
    acked_without_state: list[str] = field(default_factory=list)
    leases_without_expiry: int = 0
    not_applied_once: list[str] = field(default_factory=list)
    call_sites: set[tuple[str, str]] = field(default_factory=set)


def leases_without_expiry() -> int:
    items = boto3.client("dynamodb").scan(TableName="tollgate-test")["Items"]
    return sum(
        1
        for item in items
        if item["pk"]["S"].startswith("EVENT#")
        and item["status"]["S"] != "COMPLETED"
        and "lease_expires_at" not in item
    )


def run_fault_matrix(h: Harness, faulty: FaultyDynamoDB) -> FaultReport:
    report = FaultReport()
    counter = itertools.count()
    for case in CASES:
        # A clean run tells which operations this kind of event calls, and how often
        faulty.fault, faulty.calls = None, Counter()
        event = case.make(h, next(counter))
        faulty.calls = Counter()
        h.deliver(event)
        assert case.committed(h, event), case.name
        profile = dict(faulty.calls)
        for (operation, times), code in itertools.product(profile.items(), FAULT_CODES):
            for nth in range(1, times + 1):
                if code == "ConditionalCheckFailedException" and (operation, nth) in case.answers_by_condition:
                    continue
                event = case.make(h, next(counter))
                faulty.calls, faulty.fault, faulty.injected = Counter(), (operation, nth, code), False
                label = f"{case.name} / {operation} #{nth} / {code}"
                try:
                    h.deliver(event, remaining_ms=5000)
                    acked = True
                except Exception:
                    acked = False
                faulty.fault = None
                report.injected += faulty.injected
                report.call_sites.add((case.name, operation))
                if acked and not case.committed(h, event):
                    report.acked_without_state.append(label)
                report.leases_without_expiry += leases_without_expiry()
                # Stripe retries later (after any lease lapsed) until it gets a 2xx
                h.clock.now += 30
                for _ in range(3):
                    try:
                        h.deliver(event)
                        break
                    except Exception:
                        h.clock.now += 30
                applied = h.repository.applied.count(event["id"])
                expected = 0 if case.name.startswith(("customer.deleted", "trial_will_end stale")) else 1
                if not case.committed(h, event) or applied != expected:
                    report.not_applied_once.append(f"{label}: applied {applied}")
    return report


def fault_harness(billing_table: str) -> tuple[Harness, FaultyDynamoDB]:
    h = build_harness(boto3.client("dynamodb"), billing_table)
    faulty = FaultyDynamoDB(h.service.writer.repository._client)  # type: ignore[attr-defined]
    for component in (h.service.ledger, h.service.writer.repository):
        component._client = faulty  # type: ignore[attr-defined]
    directory = DynamoCustomerDirectory(faulty, billing_table, clock=h.clock)  # type: ignore[arg-type]
    h.service.writer.directory = directory
    return h, faulty


def test_faults_at_every_call_site_never_ack_without_state_and_recover_once(billing_table: str) -> None:
    # Given the webhook on a DynamoDB client that fails the Nth call of each operation it makes
    h, faulty = fault_harness(billing_table)
    # When every call site fails once with each fault, then Stripe retries
    report = run_fault_matrix(h, faulty)
    # Then every fault was injected, at every call site the four event kinds use
    assert report.injected >= 40
    # (get_item is no call site any more: the ledger is never read on the one-write path)
    assert {op for _, op in report.call_sites} >= {"put_item", "update_item", "transact_write_items"}
    # And no 2xx came without the state, no lease lacked an expiry, and each event applied exactly once
    assert report.acked_without_state == []
    assert report.leases_without_expiry == 0
    assert report.not_applied_once == []


def test_control_treating_an_unexpected_conditional_failure_as_stale_acks_without_state(
    billing_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the naive reading of a conditional failure: "the stored state must be newer"
    monkeypatch.setattr(repository_module, "classify_rejection", lambda write, current: WriteOutcome.STALE)
    h, faulty = fault_harness(billing_table)
    report = run_fault_matrix(h, faulty)
    # Then some events were acknowledged without their state
    assert report.acked_without_state


@pytest.mark.parametrize("code", FAULT_CODES)
def test_a_fault_at_the_lease_release_leaves_a_lease_that_expires_and_the_retry_applies_once(
    billing_table: str, code: str
) -> None:
    # Given a leased event whose Stripe fetch fails (so the attempt releases its lease), and the release fails too
    h, faulty = fault_harness(billing_table)
    event = checkout_completed(h, 90_000)
    h.stripe.fail_with = errors.UpstreamUnavailable()
    faulty.calls, faulty.fault = Counter(), ("delete_item", 1, code)
    # When it is delivered
    with pytest.raises(errors.UpstreamUnavailable):
        h.deliver(event, remaining_ms=5000)
    # Then the fault was injected at the release, the answer is non-2xx (Stripe's own error, not the release's),
    # and the lease left behind has an expiry within the invocation
    assert faulty.injected
    faulty.fault, h.stripe.fail_with = None, None
    assert leases_without_expiry() == 0
    item = ledger_item(billing_table, event["id"])
    assert int(item["lease_expires_at"]["N"]) <= h.clock.now + 5
    # And Stripe's retry after that lease lapsed applies the event exactly once
    h.clock.now += 30
    assert h.deliver(event).result == "applied"
    assert h.repository.applied.count(event["id"]) == 1
    assert checkout_committed(h, event)
