"""Compare an emulator object with Stripe's published example of the same resource (`fixtures3.json`).

Key sets must be equal at the top level and at the nested paths named by the caller (`items.data[]`: the first
element of the list at `items.data`). At every level compared, each shared key must have Stripe's value shape:
a list object where Stripe has one, an object, a list or the scalar kind the fixture shows, and null only where the
pinned SDK (stripe==16.1.0) types the field as Optional.
"""

from __future__ import annotations

import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import stripe
from stripe._list_object import ListObject
from stripe._stripe_object import StripeObject

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "stripe" / "fixtures3.json"
# The only way to skip the comparison: say so explicitly (a machine without ../shared). CI has the file.
SKIP_ENV = "TOLLGATE_SKIP_STRIPE_FIXTURES"


def load_fixtures(path: Path = FIXTURES, env: typing.Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The fixture resources; a missing file fails the test unless `SKIP_ENV=1` says to skip."""
    if not path.exists():
        message = f"Stripe fixtures not found at {path} (clone the repository beside ../shared)"
        if env.get(SKIP_ENV) == "1":
            pytest.skip(f"{message}; skipped because {SKIP_ENV}=1")
        pytest.fail(f"{message}, or set {SKIP_ENV}=1 to skip the comparison on purpose", pytrace=False)
    resources: dict[str, Any] = json.loads(path.read_text())["resources"]
    return resources


def _unwrap(annotation: Any) -> tuple[bool, list[Any]]:
    """(nullable, the non-None alternatives) of a type annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = list(typing.get_args(annotation))
        return type(None) in args, [a for a in args if a is not type(None)]
    return False, [annotation]


def _resolve(ref: Any) -> Any:
    if isinstance(ref, typing.ForwardRef):
        return getattr(stripe, ref.__forward_arg__, None)
    if isinstance(ref, str):
        return getattr(stripe, ref, None)
    return ref


def _annotation(cls: type | None, key: str) -> Any:
    if not isinstance(cls, type):
        return None
    for klass in cls.__mro__:
        ann = vars(klass).get("__annotations__", {})
        if key in ann:
            return ann[key]
    return None


def _child_class(cls: type | None, key: str, annotation: Any) -> tuple[type | None, bool]:
    """The SDK class of `key`'s value and whether it is a list object (its elements are then of that class)."""
    if isinstance(cls, type) and key in getattr(cls, "_inner_class_types", {}):
        return cls._inner_class_types[key], False
    _, alternatives = _unwrap(annotation)
    for alt in alternatives:
        origin = typing.get_origin(alt)
        if origin is ListObject:
            return _resolve(typing.get_args(alt)[0]), True
        if origin in (list, typing.List):  # noqa: UP006 - the SDK's own spelling
            return _resolve(typing.get_args(alt)[0]), False
        resolved = _resolve(alt)
        if isinstance(resolved, type) and issubclass(resolved, StripeObject):
            return resolved, False
    return None, False


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "list object" if value.get("object") == "list" and "data" in value else "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


class Comparison:
    """Walks one object against its fixture; `problems` lists every difference found, by path."""

    def __init__(
        self, nested: typing.Iterable[str] = (), optional: typing.Mapping[str, set[str]] | None = None
    ) -> None:
        self.nested = set(nested)
        # Keys Stripe returns that its example omits, by path (the test proves the SDK types each one).
        self.optional = dict(optional or {})
        self.problems: list[str] = []
        self.visited: set[str] = set()

    def run(self, actual: dict[str, Any], fixture: dict[str, Any], sdk_class: type | None) -> list[str]:
        self._level("", actual, fixture, sdk_class)
        # A nested path never reached (null, empty list) would otherwise pass without being compared.
        for path in sorted(self.nested - self.visited):
            self.problems.append(
                f"{path}: not compared (absent, null or empty in the emulator's object or the fixture)"
            )
        return self.problems

    def _level(self, path: str, actual: dict[str, Any], fixture: dict[str, Any], cls: type | None) -> None:
        self.visited.add(path)
        self._keys(path, actual, fixture)
        for key in sorted(set(fixture) & set(actual)):
            self._value(f"{path}.{key}" if path else key, key, actual[key], fixture[key], cls)

    def _keys(self, path: str, actual: dict[str, Any], fixture: dict[str, Any]) -> None:
        allowed = self.optional.get(path, set())
        missing = sorted(set(fixture) - set(actual))
        extra = sorted(set(actual) - set(fixture) - allowed)
        if missing:
            self.problems.append(f"{path or '.'}: missing {missing}")
        if extra:
            self.problems.append(f"{path or '.'}: not in Stripe's object {extra}")

    def _value(self, path: str, key: str, actual: Any, fixture: Any, cls: type | None) -> None:
        annotation = _annotation(cls, key)
        nullable, _ = _unwrap(annotation)
        want, got = _kind(fixture), _kind(actual)
        if got == "null":
            if want != "null" and not nullable:
                self.problems.append(f"{path}: null, but Stripe's {key} is never null (a {want})")
            return
        if want not in ("null", got):
            self.problems.append(f"{path}: a {got}, Stripe's is a {want}")
            return
        child, is_list_object = _child_class(cls, key, annotation)
        if got == "list object":
            if path in self.nested:
                self.visited.add(path)
                self._keys(path, actual, fixture)
            element = f"{path}.data[]"
            if element in self.nested and actual["data"] and fixture["data"]:
                self._level(element, actual["data"][0], fixture["data"][0], child)
        elif got == "object" and path in self.nested and want == "object":
            self._level(path, actual, fixture, None if is_list_object else child)
        elif (
            got == "list"
            and f"{path}[]" in self.nested
            and actual
            and fixture
            and isinstance(actual[0], dict)
            and isinstance(fixture[0], dict)
        ):
            self._level(f"{path}[]", actual[0], fixture[0], child)


def compare(
    actual: dict[str, Any],
    fixture: dict[str, Any],
    sdk_class: type | None,
    nested: typing.Iterable[str] = (),
    optional: typing.Mapping[str, set[str]] | None = None,
) -> list[str]:
    """Every difference between `actual` and Stripe's `fixture` (empty when they agree)."""
    return Comparison(nested, optional).run(actual, fixture, sdk_class)
