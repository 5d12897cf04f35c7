"""The billing table's stream in tests: the publisher's event source mapping (devstack.stream_poller, built from the
template's mapping) feeding the domain-event relay, on in-process moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from devstack.stream_poller import StreamMapping, StreamPoller
from tests.support.template import stream_mapping_properties
from tollgate.adapters.dynamodb import stream_records
from tollgate.ports.messaging import DomainEventPublisher
from tollgate.services.domain_event_relay import DomainEventRelay


def streams_client() -> Any:
    # In-process moto answers the classic endpoint only (botocore would pick the account-based one).
    return boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))


def stream_arn(table: str) -> str:
    return str(boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"])


def template_mapping(**overrides: Any) -> StreamMapping:
    props = {**stream_mapping_properties(), **overrides}
    return StreamMapping.from_event_properties(props)


def relay_for(publisher: DomainEventPublisher) -> DomainEventRelay:
    return DomainEventRelay(publisher, decode=stream_records.item_change, sequence_of=stream_records.sequence_number)


def handler_for(relay: DomainEventRelay) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What functions/publisher/app.py does with a batch, without the Lambda wrappers."""

    def handle(event: dict[str, Any]) -> dict[str, Any]:
        retry = relay.relay(event["Records"])
        return {"batchItemFailures": [{"itemIdentifier": s} for s in retry]}

    return handle


def publisher_poller(
    table: str, publisher: DomainEventPublisher, *, mapping: StreamMapping | None = None, invoke: Any = None
) -> StreamPoller:
    """The table's stream, read as the template's mapping reads it, delivered to the relay (or ``invoke``)."""
    return StreamPoller(
        streams_client(), stream_arn(table), mapping or template_mapping(), invoke or handler_for(relay_for(publisher))
    )
