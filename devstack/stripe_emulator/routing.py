"""Request/response types and the routing table (method + path pattern -> handler).

Each resource class lists its routes as `RouteSpec` rows (`routes()`); the composition root adds them in order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

Kind = Literal["v1", "v2", "stream", "control", "page"]


class Headers(dict[str, str]):
    """Case-insensitive header lookup (keys stored lower-cased)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for k, v in dict(items).items():
            self[k.lower()] = v

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, Any]
    params: dict[str, Any]
    headers: Headers
    raw_body: bytes
    kind: Kind = "v1"
    path_params: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    stripe_version: str = ""
    request_id: str = ""
    idempotency_key: str | None = None
    base_url: str = ""

    @property
    def expand(self) -> list[str]:
        value = self.params.get("expand", [])
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [str(v) for v in value.values()]
        return [str(v) for v in value]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    wait_event_ids: list[str] = field(default_factory=list)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status=status, body=json.dumps(payload).encode(), headers=dict(headers or {}))

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status=status, body=text.encode(), content_type="text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str, wait_event_ids: list[str] | None = None) -> Response:
        return cls(
            status=303,
            body=b"",
            headers={"Location": location},
            content_type="text/html; charset=utf-8",
            wait_event_ids=list(wait_event_ids or []),
        )


# A connection closed without an answer (the `drop_connection` fault).
DROP = Response(status=0)

Handler = Callable[[Request], "dict[str, Any] | Response"]


class RouteSpec(NamedTuple):
    """One row of a resource's route table; `kind` defaults to v1/v2 from the path."""

    method: str
    template: str
    handler: Handler
    kind: Kind | None = None


class Resource(Protocol):
    """Anything that serves routes: a class per Stripe resource, one method per route."""

    def routes(self) -> list[RouteSpec]: ...


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    kind: Kind
    template: str


class Router:
    """Path templates like `/v1/customers/{id}` compiled to regexes; first match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, kind: Kind | None = None) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
        if kind is None:
            kind = "v2" if template.startswith("/v2/") else "v1"
        self.routes.append(Route(method.upper(), re.compile(regex), handler, kind, template))

    def add_table(self, resource: Resource) -> None:
        for spec in resource.routes():
            self.add(spec.method, spec.template, spec.handler, spec.kind)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            m = route.pattern.match(path)
            if m is not None and route.method == method.upper():
                return route, m.groupdict()
        return None
