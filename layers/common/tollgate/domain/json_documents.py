"""The JSON the product accepts from outside (request bodies, webhook payloads): parsed strictly, with bounds.

A body nested 50,000 deep makes ``json.loads`` raise RecursionError, a 5,000-digit integer a ValueError (Python's
4,300-digit limit), and duplicate keys are silently resolved to the last one (so two readers could disagree about
what was sent). All three are the sender's fault and answer 400, before any validation or processing.
"""

from __future__ import annotations

import json
from typing import Any

#: Deeper than any request or Stripe event the product reads (Stripe objects nest about 6 levels).
MAX_DEPTH = 64
#: Digits of an integer literal: Stripe amounts and timestamps are far shorter.
MAX_INTEGER_DIGITS = 30


class UnacceptableJson(ValueError):
    """The document is not JSON the product accepts; ``reason`` is short and never echoes the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise UnacceptableJson("duplicate key in JSON object")
    return document


def _bounded_integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise UnacceptableJson("number too long")
    return int(literal)


def _depth_within(text: str, limit: int) -> bool:
    """A scan outside strings: the nesting never goes deeper than ``limit`` (checked before parsing recurses)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def parse_json_document(raw: bytes | str) -> Any:
    """The document, or UnacceptableJson (not UTF-8, not JSON, too deep, a huge number, a duplicate key)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UnacceptableJson("body is not UTF-8") from None
    # Only a document with that many brackets can be that deep: the common case costs two C-speed counts.
    if text.count("[") + text.count("{") > MAX_DEPTH and not _depth_within(text, MAX_DEPTH):
        raise UnacceptableJson("JSON nested too deep")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_bounded_integer)
    except UnacceptableJson:
        raise
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise UnacceptableJson("body is not JSON") from None
