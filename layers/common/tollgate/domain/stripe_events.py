"""Parsing a verified delivery: a v1 snapshot event or a v2 thin event notification, on the same URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tollgate.domain.json_documents import UnacceptableJson, parse_json_document
from tollgate.errors import InvalidRequest


class SnapshotData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class SnapshotEvent(BaseModel):
    """A v1 event (``object: "event"``) carrying the object as it was right after the change."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["snapshot"] = "snapshot"
    id: str = Field(pattern=r"^evt_[A-Za-z0-9_]+$", max_length=255)
    object: Literal["event"]
    type: str = Field(min_length=1, max_length=200)
    created: int = Field(ge=0)
    livemode: bool = False
    api_version: str | None = None
    data: SnapshotData


class RelatedObject(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=255)
    type: str
    url: str | None = None


class ThinEvent(BaseModel):
    """A v2 event notification (``object: "v2.core.event"``): only a pointer, the handler fetches the object."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["thin"] = "thin"
    id: str = Field(pattern=r"^evt_[A-Za-z0-9_]+$", max_length=255)
    object: Literal["v2.core.event"]
    type: str = Field(min_length=1, max_length=200)
    created: datetime
    livemode: bool = False
    related_object: RelatedObject | None = None
    data: dict[str, Any] | None = None

    @property
    def created_epoch(self) -> int:
        return int(self.created.timestamp())


StripeEvent = SnapshotEvent | ThinEvent


def parse_event(raw_body: bytes) -> StripeEvent:
    """Detect the payload kind and validate it; anything else is the sender's fault (400), never a 500."""
    try:
        # Strict even under a valid signature: a hostile body is the sender's fault, 400, never 500.
        document = parse_json_document(raw_body)
    except UnacceptableJson as exc:
        raise InvalidRequest(exc.reason) from None
    return event_from_document(document)


def event_from_document(document: Any) -> StripeEvent:
    """A decoded JSON document as a snapshot or thin event; InvalidRequest for anything else."""
    if not isinstance(document, dict):
        raise InvalidRequest("body is not an event")
    try:
        if document.get("object") == "event":
            return SnapshotEvent.model_validate(document)
        if document.get("object") == "v2.core.event":
            return ThinEvent.model_validate(document)
    except ValidationError:
        raise InvalidRequest("malformed event") from None
    raise InvalidRequest("unknown payload kind")
