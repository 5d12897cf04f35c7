"""Hostile JSON on every route and on the webhook (with a valid signature): deep nesting, huge numbers, huge
strings, duplicate keys, invalid UTF-8 each get a 400 or 413 with the shared error shape, never a 5xx, and the
answer never echoes the body. Control: the plain parser these routes used to reach raises on the same inputs."""

from __future__ import annotations

import base64
import importlib
import json
from typing import Any

import pytest

from tests.support.events import FakeLambdaContext, http_api_event

CLAIMS = {"sub": "user-hostile", "email": "h@example.com", "email_verified": "true"}
API_ROUTES = [
    ("checkout", "POST", "/checkout/sessions"),
    ("portal", "POST", "/portal/sessions"),
    ("portal", "POST", "/billing/subscription/preview"),
    ("portal", "POST", "/billing/subscription/change"),
]
SECRET_MARK = "sekrit-marker-7f3a"


def corpus() -> list[tuple[str, bytes]]:
    return [
        ("nested 50,000 deep", b"[" * 50_000 + b"]" * 50_000),
        ("nested objects 5,000 deep", b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
        ("a 5,000-digit integer", b'{"plan": "starter", "quantity": ' + b"9" * 5_000 + b"}"),
        ("a huge string", json.dumps({"plan": SECRET_MARK * 200_000}).encode()),
        ("duplicate keys", b'{"plan": "starter", "plan": "team"}'),
        ("invalid UTF-8", b'{"plan": "\xff\xfe starter"}'),
        ("not JSON", f"plan={SECRET_MARK}".encode()),
    ]


def assert_refused(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] in (400, 413), answer
    body = json.loads(answer["body"])
    assert set(body) == {"error"}
    assert body["error"]["status"] == answer["statusCode"]
    assert SECRET_MARK not in answer["body"]


@pytest.mark.parametrize(("name", "raw"), corpus(), ids=[n for n, _ in corpus()])
@pytest.mark.parametrize(("function", "method", "path"), API_ROUTES, ids=[p for _, _, p in API_ROUTES])
def test_hostile_json_on_every_api_route_is_a_400_or_413(
    world: Any, function: str, method: str, path: str, name: str, raw: bytes
) -> None:
    # Given the route's real handler (its services on fakes), and a hostile body as API Gateway delivers it
    # (base64-encoded: it does so for bodies that are not valid UTF-8 text)
    app = importlib.import_module(f"functions.{function}.app")
    event = http_api_event(method, path, body=b"{}", claims=CLAIMS, scopes=["billing"], base64_body=True)
    event["body"] = base64.b64encode(raw).decode()
    # When it handles the request / Then it refuses it with the shared error shape
    assert_refused(app.handler(event, FakeLambdaContext()))
    # And nothing reached Stripe
    assert world.sessions.checkout_calls == world.sessions.portal_calls == []


@pytest.mark.parametrize(("name", "raw"), [corpus()[0], corpus()[2]], ids=["deep", "huge integer"])
def test_control_the_plain_parser_raises_what_would_be_a_500(name: str, raw: bytes) -> None:
    with pytest.raises((RecursionError, ValueError)):
        json.loads(raw)
