"""Hostile bodies under a valid signature (a leaked signing secret, or Stripe's worst day): deep nesting, huge
numbers, duplicate keys, invalid UTF-8 and non-JSON answer 400 (or 413 over the size cap), never 500, and write
nothing."""

from __future__ import annotations

import boto3
import pytest

from tests.integration.webhooks.harness import Harness, build_harness
from tests.unit.api.test_hostile_json import corpus
from tollgate import errors
from tollgate.domain.signatures import sign


@pytest.fixture
def h(billing_table: str) -> Harness:
    return build_harness(boto3.client("dynamodb"), billing_table)


@pytest.mark.parametrize(("name", "raw"), corpus(), ids=[n for n, _ in corpus()])
def test_a_signed_hostile_body_is_refused_with_a_4xx_and_writes_nothing(
    h: Harness, billing_table: str, name: str, raw: bytes
) -> None:
    with pytest.raises((errors.InvalidRequest, errors.PayloadTooLarge)):
        h.deliver(raw)
    assert boto3.client("dynamodb").scan(TableName=billing_table)["Count"] == 0


def test_a_signature_timestamp_with_a_leading_zero_is_refused(h: Harness) -> None:
    # Given a body signed at t, presented as t=0<t> (Stripe's libraries compare the string as sent)
    body = b'{"id": "evt_1", "object": "event"}'
    stamp = int(h.clock())
    header = sign(body, h.secrets[0], stamp).replace(f"t={stamp}", f"t=0{stamp}")
    from tollgate.services.webhook import WebhookDelivery

    with pytest.raises(errors.InvalidRequest):
        h.service.receive(WebhookDelivery(body, header, 9000))


def test_control_the_canonical_timestamp_of_the_same_signature_verifies() -> None:
    from tollgate.domain.signatures import verify_signature

    body, secret, stamp = b"{}", "whsec_" + "k" * 24, 1_790_000_000
    assert verify_signature(body, sign(body, secret, stamp), [secret], 300, stamp) == 0
