"""The usage message contract: strict validation, deterministic identifiers, the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tollgate.domain.usage import (
    MAX_MESSAGE_BYTES,
    MalformedUsage,
    meter_identifier,
    parse_usage_message,
    usage_id_from_identifier,
    usage_message_json_schema,
)

from .fakes import usage

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "usage-message.schema.json"


def test_published_schema_equals_the_model() -> None:
    # Given the schema published for producers in other languages
    published = json.loads(SCHEMA_PATH.read_text())
    # Then it is exactly what the model generates (regenerate with `python -m tollgate.commands.usage_schema`)
    assert published == usage_message_json_schema()


def test_a_valid_message_parses() -> None:
    message = parse_usage_message(json.dumps(usage("u-1", dimensions={"model": "small"})))
    assert (message.usage_id, message.value, message.dimensions) == ("u-1", 5, {"model": "small"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "not_an_object"),
        (json.dumps(usage("u", value=-1)), "invalid_value"),
        (
            '{"schema_version": 1, "usage_id": "u", "event_name": "api_tokens", "user_id": "x", "value": NaN, '
            '"occurred_at": 1790000000}',
            "invalid_value",
        ),
        (
            '{"schema_version": 1, "usage_id": "u", "event_name": "api_tokens", "user_id": "x", "value": Infinity, '
            '"occurred_at": 1790000000}',
            "invalid_value",
        ),
        (json.dumps(usage("u", value=2.5)), "invalid_value"),
        (json.dumps(usage("u", value=3.0)), "invalid_value"),
        (json.dumps(usage("u", value="3")), "invalid_value"),
        (json.dumps(usage("u", value=True)), "invalid_value"),
        (json.dumps(usage("u", user_id=None)), "invalid_customer"),
        (json.dumps(usage("u", stripe_customer_id="cus_A")), "invalid_customer"),  # both references
        (json.dumps(usage("u", occurred_at=1.5e9)), "invalid_occurred_at"),
        (json.dumps(usage("u", dimensions={"value": "9"})), "invalid_dimensions"),
        (json.dumps(usage("u", schema_version=2)), "invalid_schema_version"),
        (json.dumps(usage("u", surprise=1)), "invalid_unknown_field"),
        (json.dumps(usage("u", dimensions={"pad": "x" * 100})) + " " * MAX_MESSAGE_BYTES, "oversize"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(body: str, reason: str) -> None:
    # When a malformed body is parsed / Then it is refused with a short reason, never coerced
    with pytest.raises(MalformedUsage) as refused:
        parse_usage_message(body)
    assert refused.value.reason == reason


def test_identifier_is_deterministic_and_specific_to_content() -> None:
    # Given the same usage id with the same and with different content
    first = parse_usage_message(json.dumps(usage("u-42")))
    again = parse_usage_message(json.dumps(usage("u-42")))
    changed = parse_usage_message(json.dumps(usage("u-42", value=6)))
    # Then the identifier repeats for the same content, differs for other content, and names the usage id
    assert first.meter_identifier() == again.meter_identifier()
    assert first.meter_identifier() != changed.meter_identifier()
    assert usage_id_from_identifier(first.meter_identifier()) == "u-42"
    assert len(meter_identifier("u" * 80, "f" * 64)) <= 100
    assert usage_id_from_identifier("mev_random") is None


def test_a_malformed_message_puts_no_producer_text_in_its_reason_or_usage_id() -> None:
    # Given a malformed message whose usage id and an unknown key carry personal data (the reason and the usage id
    # are logged and become DLQ message attributes)
    body = usage("alice@example.com", value=-1)
    body["alice@example.com"] = "x"
    # When it is parsed / Then the reason names only contract fields and the invalid usage id is dropped
    with pytest.raises(MalformedUsage) as refused:
        parse_usage_message(json.dumps(body))
    assert refused.value.reason == "invalid_unknown_field+usage_id+value"
    assert refused.value.usage_id is None
    # And a valid usage id of an otherwise malformed message is kept, to find the record
    with pytest.raises(MalformedUsage) as kept:
        parse_usage_message(json.dumps(usage("u-7", value=-1)))
    assert kept.value.usage_id == "u-7"
