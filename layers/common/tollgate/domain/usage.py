"""The usage message contract (version 1): what any producer, in any language, puts on the usage queue.

The JSON Schema published in ``docs/usage-message.schema.json`` is generated from :class:`UsageMessage`; a test
keeps the two equal. Validation is strict on purpose: a float, a boolean, a numeric string or NaN where an integer
is expected is a malformed message (parked), never silently coerced into money.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
#: Larger bodies are parked unread: a usage record is a few hundred bytes.
MAX_MESSAGE_BYTES = 4096
#: Stripe accepts identifiers up to 100 characters; "tg1_" + usage id + "_" + 12 hash chars must fit.
MAX_USAGE_ID_LENGTH = 80
#: Stripe meter values are integers; keep them inside what every JSON implementation represents exactly.
MAX_VALUE = 2**53 - 1
#: Payload keys the reporter fills itself; a producer's dimensions may not override them.
RESERVED_PAYLOAD_KEYS = frozenset({"stripe_customer_id", "value"})

UsageId = Annotated[str, Field(min_length=1, max_length=MAX_USAGE_ID_LENGTH, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
EventName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
DimensionKey = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
DimensionValue = Annotated[StrictStr, Field(max_length=100)]


class MalformedUsage(ValueError):
    """The message cannot be billed as it stands: parked with ``reason``, never retried."""

    def __init__(self, reason: str, usage_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage_id = usage_id


class UsageMessage(BaseModel):
    """One usage record: ``value`` units of the meter ``event_name`` used by one customer at ``occurred_at``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="TollgateUsageMessage",
        json_schema_extra={"$id": "https://tollgate.dev/schemas/usage-message-v1.json"},
    )

    schema_version: Literal[1] = Field(description="Contract version; only 1 exists.")
    usage_id: UsageId = Field(
        description="The producer's unique id for this record. Re-sending the same record must reuse it; it is "
        "counted once however often it arrives."
    )
    event_name: EventName = Field(description="The Stripe meter's event_name, e.g. api_tokens.")
    stripe_customer_id: Annotated[str, Field(pattern=r"^cus_[A-Za-z0-9]+$", max_length=64)] | None = Field(
        default=None, description="The Stripe customer. Exactly one of stripe_customer_id and user_id."
    )
    user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="The application's user id (the JWT sub), mapped to the Stripe customer through the customer "
        "table. Exactly one of stripe_customer_id and user_id.",
    )
    value: Annotated[StrictInt, Field(ge=0, le=MAX_VALUE)] = Field(description="Units used, a whole number >= 0.")
    occurred_at: Annotated[StrictInt, Field(gt=0)] = Field(
        description="When the usage happened, Unix seconds. Stripe accepts the past 35 days up to 5 minutes ahead."
    )
    dimensions: Annotated[dict[DimensionKey, DimensionValue], Field(max_length=10)] = Field(
        default_factory=dict, description="Optional extra meter payload keys (strings), e.g. a model or region."
    )

    @model_validator(mode="after")
    def _one_customer_reference(self) -> Self:
        if (self.stripe_customer_id is None) == (self.user_id is None):
            raise ValueError("exactly one of stripe_customer_id and user_id is required")
        return self

    @field_validator("dimensions")
    @classmethod
    def _no_reserved_keys(cls, dimensions: dict[str, str]) -> dict[str, str]:
        clashing = RESERVED_PAYLOAD_KEYS.intersection(dimensions)
        if clashing:
            raise ValueError(f"dimensions may not set {sorted(clashing)}")
        return dimensions

    def content_hash(self) -> str:
        """A hash of everything that decides what is billed: same id + different hash is a conflict."""
        canonical = json.dumps(
            self.model_dump(exclude={"schema_version"}), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def meter_identifier(self) -> str:
        """Stripe's dedup key: derived from the usage id and its content, never random, never the SQS id."""
        return meter_identifier(self.usage_id, self.content_hash())


def meter_identifier(usage_id: str, content_hash: str) -> str:
    return f"tg1_{usage_id}_{content_hash[:12]}"


def usage_id_from_identifier(identifier: str) -> str | None:
    """The usage id inside an identifier this package made (None for anyone else's identifier)."""
    if not identifier.startswith("tg1_") or len(identifier) < 4 + 1 + 13:
        return None
    usage_id, sep, digest = identifier[4:].rpartition("_")
    if not sep or len(digest) != 12 or not usage_id:
        return None
    return usage_id


def parse_usage_message(body: str | bytes) -> UsageMessage:
    """Parse one queue message body; raises MalformedUsage with a short, payload-free reason."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedUsage("oversize")
    try:
        decoded: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedUsage("invalid_json") from None
    if not isinstance(decoded, dict):
        raise MalformedUsage("not_an_object")
    try:
        return UsageMessage.model_validate(decoded)
    except ValidationError as exc:
        raise MalformedUsage(invalid_reason(exc), usage_id=valid_usage_id(decoded.get("usage_id"))) from None


def invalid_reason(exc: ValidationError) -> str:
    """``invalid_`` + the contract's field names at fault. Producer text (an unknown key) never appears: the
    reason is logged and becomes a DLQ message attribute, which must hold neither payload nor arbitrary text."""
    fields: set[str] = set()
    for err in exc.errors():
        # An error without a location comes from the model-level rule: the customer reference.
        name = str(err["loc"][0]) if err["loc"] else "customer"
        fields.add(name if name in UsageMessage.model_fields or not err["loc"] else "unknown_field")
    return "invalid_" + "+".join(sorted(fields))


_USAGE_ID = TypeAdapter(UsageId)


def valid_usage_id(value: Any) -> str | None:
    """The message's usage id when it is a valid one (it is logged and kept as an attribute), else None."""
    try:
        return _USAGE_ID.validate_python(value, strict=True)
    except ValidationError:
        return None


def usage_message_json_schema() -> dict[str, Any]:
    """The published JSON Schema (docs/usage-message.schema.json is this, serialised)."""
    schema = UsageMessage.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
