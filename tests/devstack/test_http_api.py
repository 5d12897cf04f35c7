"""The HTTP API emulator: routes, authorizer, CORS and payload 2.0 exactly as template.yaml and API Gateway define them.

Functions are replaced by a recording invoker, so "rejected before the handler" is observable: the invoker is
never called.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.http_api import FunctionFailed, HttpApiEmulator, HttpApiSpec, http_api_from_template
from devstack.template import Resolver, load_template

POOL_ID = "us-east-1_LocalPool"
CLIENT_ID = "localclient123"
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL_ID}"
SCOPE = "aws.cognito.signin.user.admin"
KID = "local-key-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Keys:
    private: rsa.RSAPrivateKey
    other: rsa.RSAPrivateKey
    jwks: dict[str, Any]

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def keys() -> Keys:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
    return Keys(private, other, {"keys": [jwk]})


def access_claims(**overrides: Any) -> dict[str, Any]:
    """Claims shaped like a Cognito access token."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "user-" + uuid.uuid4().hex[:8],
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "scope": SCOPE,
        "auth_time": now,
        "iat": now - 5,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(keys: Keys, claims: dict[str, Any] | None = None, *, kid: str = KID, key: Any = None) -> str:
    return jwt.encode(claims or access_claims(), key or keys.private, algorithm="RS256", headers={"kid": kid})


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


@dataclass
class RecordingInvoker:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay_seconds: float = 0.0
    fail: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, function_id: str, event: dict[str, Any]) -> Any:
        with self.lock:
            self.events.append((function_id, event))
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.fail:
            raise FunctionFailed("boom")
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"reached":true}'}

    def last(self) -> tuple[str, dict[str, Any]]:
        return self.events[-1]


def template_spec(template: dict[str, Any] | None = None) -> HttpApiSpec:
    resolver = Resolver(template or load_template())
    resolver.refs.update({"UserPool": POOL_ID, "UserPoolClient": CLIENT_ID})
    return http_api_from_template(resolver)


@dataclass
class Api:
    url: str
    invoker: RecordingInvoker
    emulator: HttpApiEmulator

    def request(
        self, method: str, path: str, *, headers: list[tuple[str, str]] | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.putrequest(method, parts.path + path, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        data = response.read()
        result = response.status, {k.lower(): v for k, v in response.getheaders()}, data
        conn.close()
        return result


@pytest.fixture(scope="module")
def api(keys: Keys) -> Iterator[Api]:
    invoker = RecordingInvoker()
    emulator = HttpApiEmulator(template_spec(), invoker, lambda issuer: keys.jwks)
    url = emulator.start("127.0.0.1", 0)
    yield Api(url, invoker, emulator)
    emulator.stop()


@pytest.fixture
def invoker(api: Api) -> RecordingInvoker:
    api.invoker.events.clear()
    return api.invoker


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


# ---- routes come from the template ------------------------------------------------------------------------


def test_routes_are_exactly_the_templates_http_api_events() -> None:
    # Given the template's HttpApi events
    template = load_template()
    expected = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for fn in template["Resources"].values()
        if fn["Type"] == "AWS::Serverless::Function"
        for e in (fn["Properties"].get("Events") or {}).values()
        if e["Type"] == "HttpApi"
    }
    # When the emulator's spec is built
    spec = template_spec(template)
    # Then it serves those routes, under the template's stage, with the webhook, plan list and OpenAPI document public
    assert {(r.method, r.path) for r in spec.routes} == expected
    assert spec.stage == template["Parameters"]["Stage"]["Default"]
    public = {r.route_key for r in spec.routes if r.authorizer is None}
    assert public == {"POST /webhooks/stripe", "GET /plans", "GET /openapi.json"}
    # And every other route needs a user's JWT with the scope, except the service routes (IAM, no scopes)
    protected = [r for r in spec.routes if r.authorizer == "JwtAuthorizer"]
    assert protected
    assert all(r.scopes == (SCOPE,) for r in protected)
    iam = [r for r in spec.routes if r.authorizer == "AWS_IAM"]
    assert len(protected) + len(iam) + len(public) == len(spec.routes)
    assert all(r.path.startswith("/service/") and r.scopes == () for r in iam)
    assert spec.authorizers["JwtAuthorizer"].issuer == ISSUER
    assert spec.authorizers["JwtAuthorizer"].audience == (CLIENT_ID,)


def test_a_changed_route_in_a_copy_of_the_template_changes_the_served_routes(tmp_path: Any) -> None:
    # Given a copy of the template whose plan list moved and became protected
    from devstack.template import TEMPLATE_PATH, load_template_text

    text = TEMPLATE_PATH.read_text().replace("Path: /plans", "Path: /catalog/plans", 1)
    text = text.replace(
        "            Auth:\n              Authorizer: NONE\n        CreateCheckoutSession",
        "        CreateCheckoutSession",
        1,
    )
    # When a spec is built from the copy
    spec = template_spec(load_template_text(text))
    keys = {r.route_key: r for r in spec.routes}
    # Then the old route is gone and the new one carries the default authorizer
    assert "GET /plans" not in keys
    assert keys["GET /catalog/plans"].authorizer == "JwtAuthorizer"


@pytest.mark.parametrize(("ingress", "served"), [("eventbridge", False), ("webhook", True), ("both", True)])
def test_the_local_api_serves_the_webhook_route_only_in_the_modes_that_register_it(
    keys: Keys, ingress: str, served: bool
) -> None:
    # Given the local API built from the template with StripeEventIngress=<ingress>
    resolver = Resolver(load_template(), parameter_overrides={"StripeEventIngress": ingress})
    resolver.refs.update({"UserPool": POOL_ID, "UserPoolClient": CLIENT_ID})
    spec = http_api_from_template(resolver)
    invoker = RecordingInvoker()
    emulator = HttpApiEmulator(spec, invoker, lambda issuer: keys.jwks)
    api = Api(emulator.start("127.0.0.1", 0), invoker, emulator)
    try:
        # When Stripe (or anyone) POSTs to the webhook's path
        status, _, body = api.request("POST", "/webhooks/stripe", body=b"{}")
    finally:
        emulator.stop()
    # Then with eventbridge it is API Gateway's own 404 and no function runs; the webhook and both modes (the
    # controls) route it to the webhook function
    assert ("POST /webhooks/stripe" in {r.route_key for r in spec.routes}) is served
    if served:
        assert (status, [fid for fid, _ in invoker.events]) == (200, ["WebhookFunction"])
    else:
        assert (status, json.loads(body), invoker.events) == (404, {"message": "Not Found"}, [])
    # And the rest of the API is the same in every mode
    assert "GET /plans" in {r.route_key for r in spec.routes}


# ---- the JWT authorizer -------------------------------------------------------------------------------


def test_a_valid_access_token_reaches_the_handler_with_verified_claims(
    api: Api, keys: Keys, invoker: RecordingInvoker
) -> None:
    # Given a Cognito-shaped access token for user-42
    token = mint(keys, access_claims(sub="user-42", email="a@example.com", email_verified=True))
    # When it calls a protected route
    status, _, body = api.request("POST", "/checkout/sessions", headers=bearer(token), body=b'{"plan":"starter"}')
    # Then the checkout function ran with the claims API Gateway passes (strings) and the token's scopes
    assert status == 200, body
    function_id, event = invoker.last()
    assert function_id == "CheckoutFunction"
    jwt_context = event["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["sub"] == "user-42"
    assert jwt_context["claims"]["email_verified"] == "true"
    assert isinstance(jwt_context["claims"]["exp"], str)
    assert jwt_context["scopes"] == [SCOPE]
    assert event["routeKey"] == "POST /checkout/sessions"
    assert event["rawPath"] == "/dev/checkout/sessions"
    assert event["requestContext"]["stage"] == "dev"


def _hostile_tokens(keys: Keys) -> dict[str, tuple[str | None, int]]:
    valid = access_claims()
    hs256_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    hs256_payload = _b64(json.dumps(valid).encode())
    mac = hmac.HMAC(keys.public_pem, hashes.SHA256())
    mac.update(f"{hs256_header}.{hs256_payload}".encode())
    hs256 = f"{hs256_header}.{hs256_payload}.{_b64(mac.finalize())}"
    signed = mint(keys, valid)
    head, _, sig = signed.split(".")
    tampered_payload = _b64(json.dumps({**valid, "sub": "someone-else"}).encode())
    return {
        "no token": (None, 401),
        "bad signature": (mint(keys, valid, key=keys.other), 401),
        "tampered payload": (f"{head}.{tampered_payload}.{sig}", 401),
        "alg none": (unsigned_token({"alg": "none", "typ": "JWT", "kid": KID}, valid) + ".", 401),
        "HS256 with the public key": (hs256, 401),
        "expired": (mint(keys, access_claims(exp=int(time.time()) - 1)), 401),
        "future nbf": (mint(keys, access_claims(nbf=int(time.time()) + 300)), 401),
        "future iat": (mint(keys, access_claims(iat=int(time.time()) + 300)), 401),
        "wrong iss": (mint(keys, access_claims(iss=ISSUER + "x")), 401),
        "wrong client_id": (mint(keys, access_claims(client_id="another-client")), 401),
        "wrong aud": (mint(keys, access_claims(client_id=None, aud="another-client")), 401),
        "unknown kid": (mint(keys, valid, kid="not-in-jwks"), 401),
        "id token without scope": (
            mint(keys, access_claims(client_id=None, aud=CLIENT_ID, scope=None, token_use="id")),
            403,
        ),
        "missing scope": (mint(keys, access_claims(scope="openid profile")), 403),
    }


HOSTILE = [
    "no token",
    "bad signature",
    "tampered payload",
    "alg none",
    "HS256 with the public key",
    "expired",
    "future nbf",
    "future iat",
    "wrong iss",
    "wrong client_id",
    "wrong aud",
    "unknown kid",
    "id token without scope",
    "missing scope",
]


@pytest.mark.parametrize("token_class", HOSTILE)
def test_hostile_tokens_are_rejected_before_the_handler(
    api: Api, keys: Keys, invoker: RecordingInvoker, token_class: str
) -> None:
    # Given a token of a hostile class
    token, expected_status = _hostile_tokens(keys)[token_class]
    # When it calls a protected route
    headers = bearer(token) if token else []
    status, response_headers, body = api.request("GET", "/billing/subscription", headers=headers)
    # Then API Gateway's answer comes back and no function ran
    assert status == expected_status, (token_class, body)
    assert json.loads(body) == {"message": "Unauthorized" if expected_status == 401 else "Forbidden"}
    if token:
        assert "www-authenticate" in response_headers
    assert invoker.events == []


def test_control_hostile_tokens_would_pass_a_naive_decoder(keys: Keys) -> None:
    # Given the hostile tokens (apart from the missing one)
    tokens = {k: v[0] for k, v in _hostile_tokens(keys).items() if v[0]}
    # When a naive authorizer only decodes them
    decoded = {k: jwt.decode(t, options={"verify_signature": False}) for k, t in tokens.items()}
    # Then every one yields a subject: only real verification tells them apart
    assert all(claims.get("sub") for claims in decoded.values())


def test_a_raw_token_without_the_bearer_prefix_is_accepted(api: Api, keys: Keys, invoker: RecordingInvoker) -> None:
    status, _, _ = api.request("GET", "/billing/subscription", headers=[("Authorization", mint(keys))])
    assert status == 200
    assert invoker.last()[0] == "PortalFunction"


# ---- public routes and payload 2.0 --------------------------------------------------------------------


def test_the_webhook_route_has_no_authorizer_and_binary_bodies_arrive_base64(
    api: Api, invoker: RecordingInvoker
) -> None:
    # Given a delivery whose content type is not text/JSON and carries no token
    raw = b"a=1&b=%C3%A9\x00\xff"
    # When it is posted to the webhook route
    status, _, _ = api.request(
        "POST",
        "/webhooks/stripe",
        headers=[("Content-Type", "application/x-www-form-urlencoded"), ("Stripe-Signature", "t=1,v1=abc")],
        body=raw,
    )
    # Then the webhook function got it with no authorizer context, base64-encoded and byte-exact
    assert status == 200
    function_id, event = invoker.last()
    assert function_id == "WebhookFunction"
    assert "authorizer" not in event["requestContext"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw
    assert event["headers"]["stripe-signature"] == "t=1,v1=abc"


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("text/plain", False),
        ("application/octet-stream", True),
        (None, True),
    ],
)
def test_json_and_text_bodies_arrive_as_text_others_base64(
    api: Api, invoker: RecordingInvoker, content_type: str | None, encoded: bool
) -> None:
    raw = json.dumps({"id": "evt_1", "name": "Zoë"}).encode()
    headers = [("Content-Type", content_type)] if content_type else []
    api.request("POST", "/webhooks/stripe", headers=headers, body=raw)
    event = invoker.last()[1]
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == raw


def test_headers_are_lower_cased_duplicates_comma_joined_and_cookies_split(api: Api, invoker: RecordingInvoker) -> None:
    # Given a request with mixed-case and repeated headers, cookies and a repeated query key
    status, _, _ = api.request(
        "GET",
        "/plans?tier=a&tier=b&q=x%20y",
        headers=[("X-Trace-Me", "one"), ("x-trace-me", "two"), ("Cookie", "a=1; b=2"), ("User-Agent", "curl/8")],
    )
    # Then the event carries them as API Gateway does
    assert status == 200
    event = invoker.last()[1]
    assert event["headers"]["x-trace-me"] == "one,two"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["rawQueryString"] == "tier=a&tier=b&q=x%20y"
    assert event["queryStringParameters"] == {"tier": "a,b", "q": "x y"}
    assert event["requestContext"]["http"] == {
        "method": "GET",
        "path": "/dev/plans",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert "body" not in event


def test_path_parameters_are_extracted(api: Api, keys: Keys, invoker: RecordingInvoker) -> None:
    status, _, _ = api.request("GET", "/checkout/sessions/cs_test_123", headers=bearer(mint(keys)))
    assert status == 200
    event = invoker.last()[1]
    assert event["routeKey"] == "GET /checkout/sessions/{id}"
    assert event["pathParameters"] == {"id": "cs_test_123"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/webhooks/stripe"), ("DELETE", "/plans"), ("GET", "/nope")])
def test_unknown_routes_and_methods_are_404_without_invoking(
    api: Api, invoker: RecordingInvoker, method: str, path: str
) -> None:
    status, _, body = api.request(method, path)
    assert status == 404
    assert json.loads(body) == {"message": "Not Found"}
    assert invoker.events == []


def test_requests_outside_the_stage_are_404(api: Api, invoker: RecordingInvoker) -> None:
    parts = urlsplit(api.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", "/plans")
    assert conn.getresponse().status == 404
    assert invoker.events == []


# ---- CORS, limits, timeouts ------------------------------------------------------------------------------


def test_cors_preflight_is_answered_from_the_templates_configuration(api: Api, invoker: RecordingInvoker) -> None:
    cors = load_template()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    origin = load_template()["Parameters"]["AllowedOrigins"]["Default"]
    # When a browser preflights a protected route from the local frontend origin, without a token
    status, headers, _ = api.request(
        "OPTIONS",
        "/checkout/sessions",
        headers=[("Origin", origin), ("Access-Control-Request-Method", "POST")],
    )
    # Then API Gateway answers it itself with the configured CORS headers
    assert status == 204
    assert headers["access-control-allow-origin"] == origin
    assert headers["access-control-allow-methods"] == ",".join(cors["AllowMethods"])
    assert headers["access-control-allow-headers"] == ",".join(cors["AllowHeaders"])
    assert headers["access-control-max-age"] == str(cors["MaxAge"])
    assert invoker.events == []


def test_cors_preflight_from_a_foreign_origin_gets_no_allow_origin(api: Api) -> None:
    status, headers, _ = api.request(
        "OPTIONS", "/plans", headers=[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")]
    )
    assert status == 204
    assert "access-control-allow-origin" not in headers


def test_actual_responses_carry_cors_headers_for_allowed_origins(api: Api) -> None:
    origin = load_template()["Parameters"]["AllowedOrigins"]["Default"]
    _, headers, _ = api.request("GET", "/plans", headers=[("Origin", origin)])
    assert headers["access-control-allow-origin"] == origin


def test_bodies_over_10_mb_are_413_before_the_handler(api: Api, invoker: RecordingInvoker) -> None:
    # Given a declared body one byte over the HTTP API quota (never sent: the gateway answers first)
    parts = urlsplit(api.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.putrequest("POST", parts.path + "/webhooks/stripe")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
    conn.endheaders()
    response = conn.getresponse()
    # Then it is refused without reaching the function
    assert response.status == 413
    assert invoker.events == []
    conn.close()


def test_integration_timeout_and_function_errors_map_like_api_gateway(keys: Keys) -> None:
    # Given a slow function behind a gateway with a short integration timeout (30 s in production)
    slow = RecordingInvoker(delay_seconds=1.0)
    emulator = HttpApiEmulator(template_spec(), slow, lambda issuer: keys.jwks, integration_timeout_seconds=0.2)
    failing = RecordingInvoker(fail=True)
    failing_emulator = HttpApiEmulator(template_spec(), failing, lambda issuer: keys.jwks)
    try:
        slow_api = Api(emulator.start(), slow, emulator)
        failing_api = Api(failing_emulator.start(), failing, failing_emulator)
        # Then a timeout is a 503 and a function error a 500
        assert slow_api.request("GET", "/plans")[0] == 503
        status, _, body = failing_api.request("GET", "/plans")
        assert status == 500
        assert json.loads(body) == {"message": "Internal Server Error"}
    finally:
        emulator.stop()
        failing_emulator.stop()


# ---- malformed and hostile requests answered as API Gateway answers them (issue 15, point 5) ----------------------


def raw_exchange(api: Api, data: bytes, *, timeout: float = 3.0) -> tuple[int, dict[str, str], bytes, float]:
    """Send raw bytes; read until the server closes (or a full response arrived). Returns status, headers, body
    and the seconds the answer took; status 0 means no answer at all."""
    parts = urlsplit(api.url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                head, sep, rest = received.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if sep and length and len(rest) >= int(length.group(1)):
                    break
        except TimeoutError:
            pass
    elapsed = time.monotonic() - started
    if not received:
        return 0, {}, b"", elapsed
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, elapsed


def request_bytes(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} /dev{path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_two_authorization_headers_forged_then_valid_are_refused(
    api: Api, keys: Keys, invoker: RecordingInvoker
) -> None:
    # Given a forged token followed by a valid one (and the reverse)
    valid = mint(keys)
    forged = mint(keys, key=keys.other)
    for first, second in ((forged, valid), (valid, forged)):
        status, _, body = api.request("GET", "/billing/subscription", headers=[*bearer(first), *bearer(second)])
        # Then the authorizer checks the one comma-joined value the function would get: not a token, 401
        assert status == 401
        assert json.loads(body) == {"message": "Unauthorized"}
    assert invoker.events == []
    # Control: the valid token alone passes, and the function receives exactly the header that was checked
    assert api.request("GET", "/billing/subscription", headers=bearer(valid))[0] == 200
    assert invoker.last()[1]["headers"]["authorization"] == f"Bearer {valid}"


@pytest.mark.parametrize("length", ["abc", "-1", "5,5", "+5"])
def test_a_content_length_that_is_not_a_number_is_a_prompt_400(
    api: Api, invoker: RecordingInvoker, length: str
) -> None:
    # When the declared length is not a decimal number (the connection stays open on the client side)
    status, headers, body, elapsed = raw_exchange(
        api, request_bytes("POST", "/webhooks/stripe", [("Content-Length", length)], b"hello")
    )
    # Then API Gateway's 400 comes at once, the connection is closed, and no function ran
    assert status == 400
    assert json.loads(body) == {"message": "Bad Request"}
    assert headers["content-type"] == "application/json"
    assert headers.get("connection") == "close"
    assert elapsed < 2.0
    assert invoker.events == []


def test_a_chunked_body_is_read_and_passed_whole(api: Api, invoker: RecordingInvoker) -> None:
    # Given a body sent in three chunks (one with an extension), then a trailer
    payload = b'{"id": "evt_1", "object": "event"}'
    chunks = [payload[:5], payload[5:20], payload[20:]]
    encoded = (
        b"".join(
            f"{len(c):x}".encode() + (b";ext=1" if i == 1 else b"") + b"\r\n" + c + b"\r\n"
            for i, c in enumerate(chunks)
        )
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )
    headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    status, _, _, _ = raw_exchange(api, request_bytes("POST", "/webhooks/stripe", headers, encoded))
    # Then the function got the whole body
    assert status == 200
    assert invoker.last()[1]["body"] == payload.decode()


@pytest.mark.parametrize(
    "framing",
    [
        [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],  # both: the smuggling shape
        [("Transfer-Encoding", "gzip")],
    ],
)
def test_ambiguous_or_unknown_framing_is_a_400(
    api: Api, invoker: RecordingInvoker, framing: list[tuple[str, str]]
) -> None:
    status, _, body, _ = raw_exchange(
        api, request_bytes("POST", "/webhooks/stripe", framing, b"5\r\nhello\r\n0\r\n\r\n")
    )
    assert status == 400
    assert json.loads(body) == {"message": "Bad Request"}
    assert invoker.events == []


def test_a_malformed_chunk_is_a_400(api: Api, invoker: RecordingInvoker) -> None:
    status, _, body, _ = raw_exchange(
        api, request_bytes("POST", "/webhooks/stripe", [("Transfer-Encoding", "chunked")], b"zz\r\nhello\r\n0\r\n\r\n")
    )
    assert status == 400
    assert json.loads(body) == {"message": "Bad Request"}
    assert invoker.events == []


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT"])
def test_methods_no_route_has_are_a_json_404(api: Api, invoker: RecordingInvoker, method: str) -> None:
    status, headers, body, _ = raw_exchange(api, request_bytes(method, "/plans", []))
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "Not Found"}
    assert invoker.events == []


@pytest.mark.parametrize(
    "extra",
    [
        [("X-Big", "a" * 10_300)],  # one value over the 10,240-byte quota
        [(f"X-H{i}", "v" * 60) for i in range(180)],  # many headers (the stdlib's own limit is 100)
        [("X-Long", "b" * 70_000)],  # a line over the stdlib's 64 KiB line limit
    ],
)
def test_headers_over_the_quota_get_a_json_431(
    api: Api, invoker: RecordingInvoker, extra: list[tuple[str, str]]
) -> None:
    status, headers, body, _ = raw_exchange(api, request_bytes("GET", "/plans", extra))
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "Request Header Fields Too Large"}
    assert invoker.events == []


def test_headers_just_under_the_quota_pass(api: Api, invoker: RecordingInvoker) -> None:
    # Control: request line plus values a little under 10,240 bytes reach the function
    assert raw_exchange(api, request_bytes("GET", "/plans", [("X-Big", "a" * 9_900)]))[0] == 200
    assert len(invoker.last()[1]["headers"]["x-big"]) == 9_900


def connected_within(port: int, count: int, seconds: float) -> int:
    """Open `count` connections at once to a listening socket nobody accepts from; how many complete."""
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
    deadline = time.monotonic() + seconds
    done: set[int] = set()
    while time.monotonic() < deadline and len(done) < count:
        _, writable, _ = select.select([], [s for i, s in enumerate(socks) if i not in done], [], 0.05)
        for s in writable:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.add(socks.index(s))
    for s in socks:
        s.close()
    return len(done)


def test_the_listen_backlog_takes_a_burst_of_50_connections() -> None:
    # Given the gateway's listening socket before it accepts anything, and the stdlib's default as control
    from devstack.http_api import _QuietServer, _RequestHandler

    class StdlibBacklog(_QuietServer):
        request_queue_size = 5

    results = {}
    for name, server_class in (("gateway", _QuietServer), ("stdlib", StdlibBacklog)):
        server = server_class(("127.0.0.1", 0), _RequestHandler)
        try:
            results[name] = connected_within(server.server_address[1], 50, seconds=0.5)
        finally:
            server.server_close()
    # Then all 50 are queued by the gateway's backlog; the stdlib's 5 leaves most of them waiting for a SYN retry
    assert results["gateway"] == 50
    assert results["stdlib"] < 50


def test_50_concurrent_requests_get_50_answers(keys: Keys) -> None:
    # Given a gateway whose function takes a moment
    invoker = RecordingInvoker(delay_seconds=0.2)
    emulator = HttpApiEmulator(template_spec(), invoker, lambda issuer: keys.jwks)
    api = Api(emulator.start(), invoker, emulator)
    try:
        barrier = threading.Barrier(50)
        statuses: list[int] = []

        def one() -> None:
            barrier.wait()
            try:
                statuses.append(api.request("GET", "/plans")[0])
            except OSError:
                statuses.append(0)

        threads = [threading.Thread(target=one) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # Then every connection got its answer
        assert statuses.count(200) == 50, statuses
    finally:
        emulator.stop()
