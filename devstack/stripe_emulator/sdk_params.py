"""Unknown parameters, refused as Stripe refuses them: checked against the pinned SDK's own `Params` TypedDicts.

stripe-python's services say, per method, which HTTP method and path they call and which TypedDict types their
`params` (``CustomerService.create`` -> ``POST /v1/customers`` with ``CustomerCreateParams``). This module reads
that table from the installed SDK's source (no copy to keep in sync), and checks a v1 request's parameters
against the TypedDict of its route, at every nesting level: a key the TypedDict does not have is Stripe's 400
``parameter_unknown`` naming it (``emial``, ``line_items[0][quantiy]``). Free-form maps (``metadata``) and
routes the SDK does not type are not checked.

Parameters only a preview API version accepts, which the SDK does not type yet, are allowed by name in
`PREVIEW_PARAMETERS` together with that version; with any other version they are unknown, as on Stripe.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import logging
import re
import sys
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import stripe
import typing_extensions
from stripe._request_options import RequestOptions
from typing_extensions import is_typeddict  # the SDK's TypedDicts are typing_extensions ones

from .errors import StripeError, missing_param

# (method, path) -> {parameter: the preview API version that accepts it}
PREVIEW_PARAMETERS: dict[tuple[str, str], dict[str, str]] = {
    # Pricing-plan Checkout (v2 billing): Stripe's `checkout_items`, accepted with a `.preview` version only.
    ("POST", "/v1/checkout/sessions"): {"checkout_items": "2025-09-30.preview"},
}


def unknown_parameter(param: str) -> StripeError:
    return StripeError(
        400,
        f"Received unknown parameter: {param}",
        code="parameter_unknown",
        param=param,
        extra={"doc_url": "https://stripe.com/docs/error-codes/parameter-unknown"},
    )


def invalid_parameter(param: str, message: str, kind: str) -> StripeError:
    return StripeError(400, message, code=f"parameter_invalid_{kind}", param=param)


@dataclass(frozen=True)
class TypedRoute:
    method: str
    template: str
    pattern: re.Pattern[str]
    params_module: str
    params_name: str
    literal_segments: int

    @property
    def params_type(self) -> type | None:
        return _load(self.params_module, self.params_name)


@functools.cache
def _load(module: str, name: str) -> type | None:
    """Imported on first use: importing every params module up front costs seconds."""
    found = getattr(importlib.import_module(module), name, None)
    return found if isinstance(found, type) and is_typeddict(found) else None


def _params_annotation(fn: ast.FunctionDef) -> str | None:
    for arg in fn.args.args:
        if arg.arg != "params" or arg.annotation is None:
            continue
        node: ast.expr = arg.annotation
        if isinstance(node, ast.Subscript):  # Optional["X"]
            node = node.slice
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
    return None


def _request_target(fn: ast.FunctionDef) -> tuple[str, str] | None:
    """The ("post", "/v1/customers/{customer}") of the method's `self._request(...)` call."""
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "_request" or len(node.args) < 2:
            continue
        method, path = node.args[0], node.args[1]
        if isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute):  # "/v1/x/{id}".format(...)
            path = path.func.value
        if isinstance(method, ast.Constant) and isinstance(path, ast.Constant) and isinstance(path.value, str):
            return str(method.value).upper(), path.value
    return None


def _imports(tree: ast.Module) -> dict[str, str]:
    """Name -> module, for the `from stripe.params... import X` lines (they sit under TYPE_CHECKING)."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stripe.params"):
            for alias in node.names:
                found[alias.asname or alias.name] = node.module
    return found


def _routes_in(source: Path) -> list[TypedRoute]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imports = _imports(tree)
    routes: list[TypedRoute] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        name, target = _params_annotation(node), _request_target(node)
        if name is None or target is None or name not in imports or not target[1].startswith("/v1/"):
            continue
        method, template = target
        regex = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        literal = sum(1 for s in template.split("/") if s and not s.startswith("{"))
        routes.append(TypedRoute(method, template, re.compile(regex), imports[name], name, literal))
    return routes


@functools.cache
def typed_routes() -> tuple[TypedRoute, ...]:
    """Every v1 route the installed SDK types, read once from its services."""
    root = Path(stripe.__file__).parent
    routes: list[TypedRoute] = []
    for source in sorted(root.rglob("_*_service.py")):
        if "params" in source.relative_to(root).parts:
            continue
        routes.extend(_routes_in(source))
    return tuple(routes)


def route_for(method: str, path: str) -> TypedRoute | None:
    """The SDK route a request path is, preferring literal segments (`/v1/customers/search` over `{customer}`)."""
    matches = [r for r in typed_routes() if r.method == method and r.pattern.match(path)]
    return max(matches, key=lambda r: r.literal_segments) if matches else None


@functools.cache
def _fields(typed: type) -> dict[str, Any]:
    """The TypedDict's own keys with their annotations (RequestOptions' keys, `api_key` and the like, are options
    the SDK sends as headers, never parameters)."""
    options = set(getattr(RequestOptions, "__annotations__", {}))
    return {k: v for k, v in getattr(typed, "__annotations__", {}).items() if k not in options}


def _arms(annotation: Any, namespace: dict[str, Any]) -> list[Any]:
    """The alternatives an annotation allows, forward references resolved in the TypedDict's module."""
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    if isinstance(annotation, typing.ForwardRef):
        try:
            annotation = eval(annotation.__forward_arg__, namespace)  # noqa: S307 - the SDK's own annotations
        except Exception:
            return []
    origin = get_origin(annotation)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required):
        return _arms(get_args(annotation)[0], namespace)
    if origin is Union or origin is types.UnionType:
        return [arm for a in get_args(annotation) for arm in _arms(a, namespace)]
    return [annotation]


_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _problem(value: Any, arm: Any, path: str, namespace: dict[str, Any]) -> str | None:
    """None when the value fits this alternative (nested TypedDicts checked, raising on their own problems);
    otherwise the kind of value the alternative wanted. Form values arrive as strings, JSON ones typed."""
    origin = get_origin(arm)
    if arm is Any or isinstance(arm, typing.TypeVar):
        return None
    if isinstance(arm, type) and is_typeddict(arm):
        if not isinstance(value, dict):
            return "hash"
        check_against(value, arm, path)
        return None
    if origin is typing_extensions.Literal or origin is typing.Literal:
        return None if str(value) in {str(v) for v in get_args(arm)} or value in get_args(arm) else "enum"
    if origin is list:
        if not isinstance(value, list):
            return "array"
        element = (get_args(arm) or (Any,))[0]
        for i, item in enumerate(value):
            _check_value(item, element, f"{path}[{i}]", namespace)
        return None
    if origin is dict or (isinstance(origin, type) and issubclass(origin, dict)) or arm is dict:
        return None if isinstance(value, dict) else "hash"
    scalar = _SCALARS.get(arm)
    if scalar is not None:
        kind, fits = scalar
        return None if fits(value) else kind
    return None  # an annotation this check does not model (an untyped object): accepted


def _integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and bool(_INTEGER.fullmatch(value)))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, str) and bool(_NUMBER.fullmatch(value)))


# Scalar annotations: the error kind and what fits (form values are strings, JSON values typed).
_SCALARS: dict[Any, tuple[str, typing.Callable[[Any], bool]]] = {
    bool: ("boolean", lambda v: isinstance(v, bool) or v in ("true", "false")),
    int: ("integer", _integer),
    float: ("number", _number),
    Decimal: ("number", _number),
    str: ("string", lambda v: isinstance(v, str)),
}


def _check_value(value: Any, annotation: Any, path: str, namespace: dict[str, Any]) -> None:
    arms = _arms(annotation, namespace)
    problems = [_problem(value, arm, path, namespace) for arm in arms]
    if not arms or None in problems:
        return
    real = [(arm, kind) for arm, kind in zip(arms, problems, strict=True) if arm != typing_extensions.Literal[""]]
    kind = real[0][1] if real else problems[0]
    if kind == "enum":
        allowed = [str(v) for a, k in real if k == "enum" for v in get_args(a)]
        raise invalid_parameter(path, f"Invalid {path}: must be one of {', '.join(allowed)}", "enum")
    raise invalid_parameter(path, f"Invalid {kind}: {_shown(value)}", str(kind))


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_against(params: dict[str, Any], typed: type, prefix: str = "") -> None:
    """Raise Stripe's 400 for the first problem at any depth: a key the TypedDict does not declare
    (parameter_unknown), a value that fits none of its types (parameter_invalid_*), a required key missing
    (parameter_missing)."""
    fields = _fields(typed)
    namespace = vars(sys.modules[typed.__module__])
    for key, value in params.items():
        path = f"{prefix}[{key}]" if prefix else str(key)
        if key not in fields:
            raise unknown_parameter(path)
        _check_value(value, fields[key], path, namespace)
    for key in sorted(getattr(typed, "__required_keys__", frozenset()) & set(fields)):
        if key not in params:
            raise missing_param(f"{prefix}[{key}]" if prefix else key)


# Every refusal in this process, for test suites that fail a test whose code sent Stripe a parameter it would
# refuse (tests/conftest.py): {"method", "path", "code", "param"}.
VIOLATIONS: list[dict[str, Any]] = []
log = logging.getLogger("devstack.stripe")


def check_request(method: str, path: str, params: dict[str, Any], stripe_version: str) -> None:
    """Validate one v1 request's parameters (no-op for routes the SDK does not type); a refusal is logged and
    kept in VIOLATIONS."""
    try:
        _check_request(method, path, params, stripe_version)
    except StripeError as refused:
        VIOLATIONS.append({"method": method, "path": path, "code": refused.code, "param": refused.param})
        log.warning("refused %s %s: %s (%s)", method, path, refused.code, refused.param)
        raise


def _check_request(method: str, path: str, params: dict[str, Any], stripe_version: str) -> None:
    route = route_for(method, path)
    params_type = route.params_type if route is not None else None
    if route is None or params_type is None:
        return
    preview = PREVIEW_PARAMETERS.get((method, route.template), {})
    version = stripe_version.split(";", 1)[0].strip()  # "2025-09-30.preview;checkout_product_catalog_preview=v1"
    typed_params = {k: v for k, v in params.items() if preview.get(k) != version}
    check_against(typed_params, params_type)
