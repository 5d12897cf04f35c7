"""Fixtures for the usage reporter's integration tests: moto SQS + DynamoDB, the Stripe emulator, the handler."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import stripe
from stripe._http_client import HTTPClient

from devstack.stripe_emulator import StripeEmulator
from tests.support.moto_clients import AtomicDynamoDB
from tests.support.template import load_template
from tollgate.adapters.dynamodb.customer_directory import DynamoCustomerDirectory
from tollgate.adapters.dynamodb.usage_ledger import DynamoUsageLedger
from tollgate.adapters.sqs import DeadLetterParking
from tollgate.adapters.stripe_api.meter_transport import StreamTransport, V1Transport
from tollgate.observability import metrics
from tollgate.services.usage_reporter import UsageReporter

from .harness import MotoQueue, Poller, QueueModel, SourceQueue

TEST_KEY = "sk" + "_test_" + "usage0integration"


def max_receive_count() -> int:
    return int(load_template()["Parameters"]["UsageMaxReceiveCount"]["Default"])


@pytest.fixture(scope="session")
def usage_emulator() -> Iterator[StripeEmulator]:
    emu = StripeEmulator(api_keys=(TEST_KEY,))
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(usage_emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch) -> StripeEmulator:
    usage_emulator.reset()
    # The SDK's own retry back-off, compressed so fault runs stay fast.
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.02)
    return usage_emulator


@pytest.fixture
def stripe_client(emu: StripeEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_KEY,
        base_addresses={"api": emu.url, "meter_events": emu.url},
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=5),
    )


@dataclass
class UsageStack:
    sqs: Any
    dynamodb: Any
    table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    directory: DynamoCustomerDirectory
    client: stripe.StripeClient
    emu: StripeEmulator

    def reporter(self, **overrides: Any) -> UsageReporter:
        parts: dict[str, Any] = {
            "ledger": DynamoUsageLedger(self.dynamodb, self.table),
            "transport": StreamTransport(lambda: self.client),
            "directory": self.directory,
            "parking": DeadLetterParking(self.sqs, self.dlq_url),
            "known_meters": frozenset({"api_tokens"}),
            "metrics": metrics,
        }
        parts.update(overrides)
        return UsageReporter(**parts)

    def v1_transport(self) -> V1Transport:
        return V1Transport(lambda: self.client)

    def handler_for(self, reporter: UsageReporter) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        """The real Lambda handler, with the composition root holding ``reporter``."""
        from functions.usage import app
        from tollgate import bootstrap
        from tollgate.config import Settings

        container = bootstrap.Container(
            Settings(table_name=self.table, stripe_secret_arn="arn:unused", usage_dlq_url=self.dlq_url)
        )
        container.__dict__["usage_reporter"] = reporter  # what the cached property would have built
        bootstrap.reset_container(container)
        return app.handler  # type: ignore[no-any-return]

    @property
    def moto_queue(self) -> MotoQueue:
        return MotoQueue(self.sqs, self.queue_url, self.queue_arn)

    def queue_model(self) -> QueueModel:
        """The in-harness queue with the template's redrive policy (see harness.py for why it exists)."""
        return QueueModel(max_receive_count=max_receive_count())

    def poller(self, reporter: UsageReporter, queue: SourceQueue | None = None, **kwargs: Any) -> Poller:
        return Poller(queue or self.moto_queue, self.handler_for(reporter), **kwargs)

    def customer(self, user_id: str) -> str:
        customer_id = self.client.v1.customers.create({"metadata": {"app_user_id": user_id}}).id
        self.directory.link(user_id, customer_id)
        return customer_id

    def send_bodies(self, bodies: list[str]) -> None:
        self.moto_queue.send_bodies(bodies)

    def dlq_messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return found
            found.extend(got)

    def stream_requests(self) -> list[dict[str, Any]]:
        return self.emu.requests_to("/v2/billing/meter_event_stream")


@pytest.fixture
def stack(billing_table: str, emu: StripeEmulator, stripe_client: stripe.StripeClient) -> Iterator[UsageStack]:
    from tollgate import bootstrap

    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="usage-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="usage",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive_count()}"}}',
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The reporter makes up to 16 ledger calls at once; in-process moto needs each call made atomic.
    dynamodb = AtomicDynamoDB(boto3.client("dynamodb"))
    yield UsageStack(
        sqs=sqs,
        dynamodb=dynamodb,
        table=os.environ["TABLE_NAME"],
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        directory=DynamoCustomerDirectory(dynamodb, os.environ["TABLE_NAME"]),
        client=stripe_client,
        emu=emu,
    )
    bootstrap.reset_container(None)
