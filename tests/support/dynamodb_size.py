"""DynamoDB's item size (what write units are billed on), from an item in the low-level attribute-value format.

Rules from the DynamoDB developer guide ("Item sizes and formats"): an attribute counts its name's UTF-8 bytes
plus its value; strings their UTF-8 bytes; numbers about one byte per two significant digits plus one; booleans
and nulls one byte; lists and maps 3 bytes plus one byte per element plus the elements (map keys count too)."""

from __future__ import annotations

from typing import Any


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    if kind == "SS":
        return sum(len(v.encode()) for v in raw)
    raise ValueError(f"unsized attribute type {kind}")
