"""The webhook's HTTP edge: the exact bytes Stripe signed and its headers, from an API Gateway HTTP API event."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from tollgate import errors


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The exact bytes Stripe signed, from an API Gateway HTTP API (payload 2.0) event."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise errors.InvalidRequest()
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise errors.InvalidRequest() from None
    return body.encode("utf-8")


def header(event: Mapping[str, Any], name: str) -> str | None:
    """Header names are case-insensitive; HTTP API lower-cases them, other front doors may not."""
    headers = event.get("headers") or {}
    wanted = name.lower()
    values = [v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted and isinstance(v, str)]
    return ",".join(values) if values else None
