"""Decode Stripe's form encoding (bracket notation) into nested dicts and lists.

`line_items[0][price]=p` -> {"line_items": [{"price": "p"}]}; `expand[]=a&expand[]=b` -> {"expand": ["a", "b"]};
`metadata[k]=` keeps the empty string (Stripe uses it to unset a key).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid

_TOKEN = re.compile(r"\[([^\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [head]
    return [head, *_TOKEN.findall("[" + rest)]


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all digit strings (array indexes) into ordered lists, recursively."""
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(isinstance(k, str) and k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Build the nested structure from ordered (key, value) pairs."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if part == "":
                # `a[]` appends; node is then a list
                if last:
                    node.append(value)
                else:
                    child: Any = [] if nxt == "" else {}
                    node.append(child)
                    node = child
                continue
            if last:
                if isinstance(node, dict):
                    node[part] = value
                continue
            if not isinstance(node, dict):
                break
            if part not in node or not isinstance(node[part], (dict, list)):
                node[part] = [] if nxt == "" else {}
            node = node[part]
    result = _listify(root)
    return result if isinstance(result, dict) else {}


def decode(body: str) -> dict[str, Any]:
    """Decode an `application/x-www-form-urlencoded` body or query string."""
    return decode_pairs(parse_qsl(body, keep_blank_values=True))


def as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def as_int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param=param) from None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def merge_metadata(current: dict[str, Any], update: Any) -> dict[str, Any]:
    """Stripe's metadata update: keys are set, an empty value unsets one, the others stay."""
    merged = dict(current)
    for key, value in dict(update or {}).items():
        if value in ("", None):
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    return merged
