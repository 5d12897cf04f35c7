"""An emulator of the template's API Gateway HTTP API: its routes, JWT and IAM authorizers, CORS and payload
format 2.0.

The route table, authorizers, stage and CORS settings are read from template.yaml (``http_api_from_template``), so
the local API serves exactly what would be deployed. Each request goes through the steps API Gateway applies, in
its order: request framing and size limits -> CORS preflight -> route match -> JWT or IAM (SigV4,
devstack.iam_authorizer) authorizer -> Lambda proxy integration (30 s) -> response mapping (+ CORS headers).

Malformed requests get API Gateway's JSON answers, never the stdlib's HTML pages or a silent close: a
Content-Length that is not a decimal number (``abc``, ``-1``) or sent with Transfer-Encoding is a 400 at once;
chunked bodies are read; a request line plus header values over the 10,240-byte quota is a 431; methods no route
has (TRACE included) are a 404. Duplicate headers are comma-joined once, and that one value is both what the
JWT authorizer checks and what the function receives (payload 2.0 joins duplicates with commas), so a forged
token followed by a valid one is refused.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from devstack.iam_authorizer import IamDenied, IamRequest, LocalPrincipals, authorize
from devstack.jwt_authorizer import (
    AuthorizerDenied,
    JwksSource,
    JwtAuthorizerConfig,
    claims_as_api_gateway_passes_them,
    token_scopes,
    verify,
)
from devstack.template import ACCOUNT_ID, Resolver, resources_of_type

log = logging.getLogger("devstack.api")

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API payload quota
MAX_HEADER_BYTES = 10240  # HTTP API quota: "total combined size of request line and header values"
INTEGRATION_TIMEOUT_SECONDS = 30.0  # HTTP API maximum integration timeout
IAM_AUTHORIZER = "AWS_IAM"  # a route's Auth.Authorizer for IAM (SigV4) authorization
LISTEN_BACKLOG = 1024  # the stdlib's 5 resets connections under the bursts the load tests send
LOCAL_API_ID = "localapi"

# Media types API Gateway passes as text; every other body (or none declared) arrives base64-encoded.
_TEXT_TYPES = re.compile(r"^(text/[^;]+|application/([\w.+-]+\+)?(json|xml|javascript))\s*(;.*)?$", re.IGNORECASE)


class BodyStream(Protocol):
    """The connection's input after the headers."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class BadFraming(Exception):
    """The body's framing cannot be trusted: answer and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FunctionFailed(Exception):
    """The function raised, crashed or timed out (API Gateway answers 500)."""


Invoke = Callable[[str, dict[str, Any]], Any]
"""Runs one function (by logical id) with an event and returns its result, or raises FunctionFailed."""


@dataclass(frozen=True)
class Route:
    method: str  # upper-case, or ANY
    path: str  # the template's path, e.g. /checkout/sessions/{id}
    function_id: str
    authorizer: str | None  # None: public (Authorizer: NONE); AWS_IAM: SigV4; else a JWT authorizer's name
    scopes: tuple[str, ...]

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        params: dict[str, str] = {}
        want = self.path.strip("/").split("/") if self.path != "/" else []
        got = path.strip("/").split("/") if path.strip("/") else []
        for i, segment in enumerate(want):
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            if greedy:
                if i >= len(got):
                    return None
                params[greedy.group(1)] = unquote("/".join(got[i:]))
                return params
            if i >= len(got):
                return None
            variable = re.fullmatch(r"\{(\w+)\}", segment)
            if variable:
                if not got[i]:
                    return None
                params[variable.group(1)] = unquote(got[i])
            elif segment != got[i]:
                return None
        return params if len(got) == len(want) else None

    @property
    def specificity(self) -> tuple[int, int, int]:
        segments = self.path.strip("/").split("/")
        literal = sum(1 for s in segments if not s.startswith("{"))
        greedy = sum(1 for s in segments if s.endswith("+}"))
        return (-greedy, literal, 0 if self.method == "ANY" else 1)


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None

    def allows(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins

    def headers_for(self, origin: str | None) -> dict[str, str]:
        if not origin or not self.allows(origin):
            return {}
        headers = {"access-control-allow-origin": "*" if "*" in self.allow_origins else origin}
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        return headers


@dataclass(frozen=True)
class HttpApiSpec:
    stage: str
    routes: tuple[Route, ...]
    authorizers: Mapping[str, JwtAuthorizerConfig]
    cors: Cors | None = None

    @property
    def base_path(self) -> str:
        return "" if self.stage == "$default" else f"/{self.stage}"

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        matches = [(r, p) for r in self.routes if (p := r.match(method, path)) is not None]
        if not matches:
            return None
        return max(matches, key=lambda m: m[0].specificity)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


def http_api_from_template(resolver: Resolver, api_id: str = "HttpApi") -> HttpApiSpec:
    """The HTTP API as the template declares it: every HttpApi event of every function becomes a route."""
    template = resolver.template
    raw_props = template["Resources"][api_id].get("Properties") or {}
    # Only what shapes requests is resolved (access logging and throttling have no local counterpart).
    props = {k: resolver.resolve(raw_props[k]) for k in ("StageName", "Auth", "CorsConfiguration") if k in raw_props}
    auth = props.get("Auth") or {}
    authorizers: dict[str, JwtAuthorizerConfig] = {}
    for name, spec in (auth.get("Authorizers") or {}).items():
        jwt_config = spec.get("JwtConfiguration") or {}
        identity = str(spec.get("IdentitySource", "$request.header.Authorization"))
        authorizers[name] = JwtAuthorizerConfig(
            name=name,
            issuer=str(jwt_config.get("issuer", "")),
            audience=_as_tuple(jwt_config.get("audience")),
            identity_header=identity.removeprefix("$request.header.").lower(),
            scopes=_as_tuple(spec.get("AuthorizationScopes")),
        )
    default_authorizer = auth.get("DefaultAuthorizer")
    routes: list[Route] = []
    for function_id, function in resources_of_type(template, "AWS::Serverless::Function").items():
        if not resolver.resource_enabled(function_id):
            continue  # a function whose Condition is false registers no route (e.g. the webhook in eventbridge mode)
        for event in (function.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            event_props = event.get("Properties") or {}
            api_ref = event_props.get("ApiId")
            if api_ref is not None and api_ref != {"Ref": api_id}:
                continue
            route_auth = resolver.resolve(event_props.get("Auth") or {})
            authorizer = route_auth.get("Authorizer", default_authorizer)
            if authorizer == "NONE":
                authorizer = None
            scopes = _as_tuple(route_auth.get("AuthorizationScopes")) or (
                authorizers[authorizer].scopes if authorizer in authorizers else ()
            )
            method = str(event_props.get("Method", "ANY")).upper()
            routes.append(Route(method, str(event_props.get("Path", "/")), function_id, authorizer, scopes))
    cors_props = props.get("CorsConfiguration")
    cors = None
    if isinstance(cors_props, dict):
        cors = Cors(
            allow_origins=_as_tuple(cors_props.get("AllowOrigins")),
            allow_methods=tuple(m.upper() for m in _as_tuple(cors_props.get("AllowMethods"))),
            allow_headers=tuple(h.lower() for h in _as_tuple(cors_props.get("AllowHeaders"))),
            expose_headers=_as_tuple(cors_props.get("ExposeHeaders")),
            allow_credentials=bool(cors_props.get("AllowCredentials", False)),
            max_age=int(cors_props["MaxAge"]) if "MaxAge" in cors_props else None,
        )
    return HttpApiSpec(
        stage=str(props.get("StageName", "$default")), routes=tuple(routes), authorizers=authorizers, cors=cors
    )


def body_is_text(content_type: str | None) -> bool:
    return bool(content_type) and bool(_TEXT_TYPES.match(content_type or ""))


def joined_headers(header_pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names, duplicates comma-joined in arrival order (cookies aside), as payload 2.0 carries them."""
    headers: dict[str, str] = {}
    for name, value in header_pairs:
        lowered = name.lower()
        if lowered == "cookie":
            continue
        headers[lowered] = f"{headers[lowered]},{value}" if lowered in headers else value
    return headers


def header_bytes(request_line: str, header_pairs: Sequence[tuple[str, str]]) -> int:
    """What API Gateway counts against its header quota: the request line and every header value."""
    return len(request_line.encode("latin-1", "replace")) + sum(
        len(v.encode("latin-1", "replace")) for _, v in header_pairs
    )


def read_body(headers: Mapping[str, str], stream: BodyStream, max_bytes: int) -> bytes:
    """The request body by its framing (Content-Length or chunked); raises BadFraming."""
    length_text = headers.get("content-length")
    encoding = headers.get("transfer-encoding")
    if encoding is not None and length_text is not None:
        raise BadFraming(400, "Bad Request")  # ambiguous framing: the request smuggling shape
    if encoding is not None:
        if encoding.strip().lower() != "chunked":
            raise BadFraming(400, "Bad Request")
        return _read_chunked(stream, max_bytes)
    if length_text is None:
        return b""
    if not re.fullmatch(r"[0-9]{1,19}", length_text.strip()):
        raise BadFraming(400, "Bad Request")  # "abc", "-1", "5,5": no length to trust
    length = int(length_text)
    if length > max_bytes:
        raise BadFraming(413, "Request Entity Too Large")
    return stream.read(length) if length else b""


def _read_chunked(stream: BodyStream, max_bytes: int) -> bytes:
    body = bytearray()
    while True:
        size_line = stream.readline(1024)
        size_text = size_line.split(b";", 1)[0].strip()
        if not size_line.endswith(b"\n") or not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
            raise BadFraming(400, "Bad Request")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > max_bytes:
            raise BadFraming(413, "Request Entity Too Large")
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(3) not in (b"\r\n", b"\n"):
            raise BadFraming(400, "Bad Request")
        body += chunk
    for _ in range(100):  # trailer fields, up to the blank line
        if stream.readline(8192) in (b"\r\n", b"\n", b""):
            return bytes(body)
    raise BadFraming(400, "Bad Request")


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    header_pairs: Sequence[tuple[str, str]],
    body: bytes,
    route: Route,
    path_parameters: Mapping[str, str],
    stage: str,
    source_ip: str,
    claims: Mapping[str, Any] | None,
    request_id: str,
    domain_name: str,
    iam: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A payload format 2.0 event, built the way API Gateway builds it."""
    headers = joined_headers(header_pairs)
    cookies = [
        c.strip() for name, value in header_pairs if name.lower() == "cookie" for c in value.split(";") if c.strip()
    ]
    now = time.time()
    trace = f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}"
    headers.setdefault("x-amzn-trace-id", trace)
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    authorizer = _authorizer_context(claims, iam)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if body:
        if body_is_text(headers.get("content-type")):
            event["body"] = body.decode("utf-8", errors="replace")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _authorizer_context(claims: Mapping[str, Any] | None, iam: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``requestContext.authorizer`` as payload format 2.0 carries it: the JWT's claims and scopes, or the IAM
    caller."""
    if claims is not None:
        scopes = token_scopes(claims)
        return {"jwt": {"claims": claims_as_api_gateway_passes_them(claims), "scopes": scopes or None}}
    if iam is not None:
        return {"iam": dict(iam)}
    return None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False  # the request's framing was not trusted: the connection cannot carry another


def _message(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(
        status, [("content-type", "application/json"), *extra], json.dumps({"message": message}).encode()
    )


def _closing(status: int, message: str) -> HttpResponse:
    """An answer before the body was read (or with its framing broken): the connection closes after it."""
    response = _message(status, message, [("connection", "close")])
    response.close = True
    return response


def _denial(denied: AuthorizerDenied) -> HttpResponse:
    """The JWT authorizer's 401 or 403."""
    challenge = [("www-authenticate", denied.www_authenticate)]
    if denied.status == 401:
        return _message(401, "Unauthorized", challenge)
    return _message(403, "Forbidden", challenge)


def response_from_result(result: Any) -> HttpResponse:
    """Payload 2.0 response mapping: a dict with statusCode is used as given; anything else is a 200 JSON body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], text.encode())
    status = result["statusCode"]
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise FunctionFailed("malformed Lambda proxy response")
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name).lower(), str(v)) for v in values)
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
    raw_body = result.get("body") or ""
    body = base64.b64decode(raw_body) if result.get("isBase64Encoded") else str(raw_body).encode()
    return HttpResponse(status, headers, body)


class HttpApiEmulator:
    """Serves one HttpApiSpec on 127.0.0.1, invoking functions through ``invoke``."""

    def __init__(
        self,
        spec: HttpApiSpec,
        invoke: Invoke,
        jwks: JwksSource,
        *,
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        principals: LocalPrincipals | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.spec = spec
        self.principals = principals or LocalPrincipals()
        self.region = region
        self.invoke = invoke
        self.jwks = jwks
        self.integration_timeout_seconds = integration_timeout_seconds
        self.max_body_bytes = max_body_bytes
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="http-api-integration")
        self.url = ""

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the API emulator binds to loopback only")
        emulator = self

        class Handler(_RequestHandler):
            api = emulator

        self._server = _QuietServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)
        self._thread.start()
        self.url = f"http://{host}:{self._server.server_address[1]}{self.spec.base_path}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- the request pipeline ---------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        header_pairs: Sequence[tuple[str, str]],
        body_stream: BodyStream,
        source_ip: str,
        host: str,
    ) -> HttpResponse:
        started = time.monotonic()
        request_id = uuid.uuid4().hex[:16]
        response = self._handle(method, target, header_pairs, body_stream, source_ip, host, request_id)
        response.headers.append(("apigw-requestid", request_id))
        log.info(
            "%s %s -> %s (%.0f ms)",
            method,
            target.split("?", 1)[0],
            response.status,
            (time.monotonic() - started) * 1e3,
        )
        return response

    def _handle(
        self,
        method: str,
        target: str,
        header_pairs: Sequence[tuple[str, str]],
        body_stream: BodyStream,
        source_ip: str,
        host: str,
        request_id: str,
    ) -> HttpResponse:
        # One view of the headers for every step: the authorizer checks exactly what the function will receive.
        lowered = joined_headers(header_pairs)
        if header_bytes(f"{method} {target} HTTP/1.1", header_pairs) > MAX_HEADER_BYTES:
            return _closing(431, "Request Header Fields Too Large")
        try:
            body = read_body(lowered, body_stream, self.max_body_bytes)
        except BadFraming as bad:
            return _closing(bad.status, bad.message)
        raw_path, _, raw_query = target.partition("?")
        origin = lowered.get("origin")
        cors = self.spec.cors

        if cors and method == "OPTIONS" and origin and "access-control-request-method" in lowered:
            return self._preflight(cors, origin)

        base = self.spec.base_path
        if base and not (raw_path == base or raw_path.startswith(base + "/")):
            return _message(404, "Not Found")
        found = self.spec.find(method, raw_path[len(base) :] or "/")
        if found is None:
            return _message(404, "Not Found")
        route, path_parameters = found

        iam = None
        try:
            if route.authorizer == IAM_AUTHORIZER:
                resource = f"{method}{raw_path[len(base) :] or '/'}"
                request = IamRequest(method, host, raw_path, raw_query, lowered, body, resource)
                iam = authorize(
                    request,
                    self.principals,
                    account_id=ACCOUNT_ID,
                    region=self.region,
                    api_id=LOCAL_API_ID,
                    stage=self.spec.stage,
                )
                claims = None
            else:
                claims = self._claims(route, lowered)
        except AuthorizerDenied as denied:
            return _denial(denied)
        except IamDenied as denied:
            return _message(403, denied.message)

        event = build_event(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            header_pairs=header_pairs,
            body=body,
            route=route,
            path_parameters=path_parameters,
            stage=self.spec.stage,
            source_ip=source_ip,
            claims=claims,
            request_id=request_id,
            domain_name=host or "localhost",
            iam=iam,
        )
        cors_headers = list(cors.headers_for(origin).items()) if cors and origin else []
        return self._integrate(route.function_id, event, cors_headers)

    def _claims(self, route: Route, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """The JWT authorizer's verified claims (None on a route without authorizer); raises AuthorizerDenied."""
        if route.authorizer is None:
            return None
        config = self.spec.authorizers[route.authorizer]
        return verify(headers.get(config.identity_header), config, route.scopes, self.jwks)

    def _integrate(
        self, function_id: str, event: dict[str, Any], cors_headers: Sequence[tuple[str, str]]
    ) -> HttpResponse:
        """Invoke the route's function; a timeout is a 503 and a failed invocation a 500 (both without CORS
        headers), like API Gateway."""
        future = self._pool.submit(self.invoke, function_id, event)
        try:
            response = response_from_result(future.result(timeout=self.integration_timeout_seconds))
        except FutureTimeout:
            return _message(503, "Service Unavailable")
        except FunctionFailed as exc:
            log.warning("integration failed: %s", exc)
            return _message(500, "Internal Server Error")
        response.headers.extend(cors_headers)
        return response

    @staticmethod
    def _preflight(cors: Cors, origin: str) -> HttpResponse:
        if not cors.allows(origin):
            return HttpResponse(204)
        headers = list(cors.headers_for(origin).items())
        headers.append(("access-control-allow-methods", ",".join(cors.allow_methods)))
        if cors.allow_headers:
            headers.append(("access-control-allow-headers", ",".join(cors.allow_headers)))
        if cors.max_age is not None:
            headers.append(("access-control-max-age", str(cors.max_age)))
        return HttpResponse(204, headers)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-request (curl ^C, a refused 10 MB upload) are normal; anything else is shown."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# What API Gateway answers where the stdlib would send an HTML error page.
_GATEWAY_ANSWERS = {
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: (431, "Request Header Fields Too Large"),
    HTTPStatus.REQUEST_URI_TOO_LONG: (431, "Request Header Fields Too Large"),  # the line counts in the quota
}


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-http-api"
    sys_version = ""
    api: HttpApiEmulator

    def log_message(self, format: str, *args: object) -> None:
        """The emulator logs one access line per request itself."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (a malformed request line, too many or too long headers) as API Gateway's
        JSON, then close: the rest of the request cannot be trusted."""
        del message, explain  # API Gateway's body says neither
        status, text = _GATEWAY_ANSWERS.get(HTTPStatus(code), (400, "Bad Request") if code < 500 else (code, ""))
        self.close_connection = True
        self._write(_closing(status, text or HTTPStatus(status).phrase))

    def handle_one_request(self) -> None:
        """The stdlib's loop, but every method goes through the API's routing (TRACE, PROPFIND...: a 404 from
        the route table, not a 501 page)."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _serve(self) -> None:
        response = self.api.handle(
            self.command,
            self.path,
            list(self.headers.items()),
            self.rfile,
            self.client_address[0],
            self.headers.get("host", ""),
        )
        if response.close:
            self.close_connection = True
        self._write(response)

    def _write(self, response: HttpResponse) -> None:
        self.send_response_only(response.status)
        self.send_header("date", self.date_time_string())
        names = {name for name, _ in response.headers}
        for name, value in response.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
