"""The example app's local host (devstack.webapp_server): its routes answer the app, nothing outside webapp/ is
served, and the local sign-in mints a token only for a same-origin request with a well-formed user id."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest
import requests

from devstack.webapp_server import APP_ROUTES, WEBAPP_DIR, WebAppServer, frontend_port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[tuple[WebAppServer, list[tuple[str | None, str | None]]]]:
    issued: list[tuple[str | None, str | None]] = []

    def issue(user_id: str | None, email: str | None) -> str:
        issued.append((user_id, email))
        return f"token-for-{user_id or 'dev'}"

    port = _free_port()
    server = WebAppServer({"api_url": "http://127.0.0.1:3000/dev"}, issue)
    server.start("127.0.0.1", port, f"http://localhost:{port}")
    try:
        yield server, issued
    finally:
        server.stop()


def url(server: WebAppServer, path: str) -> str:
    return server.origin.replace("localhost", "127.0.0.1") + path


def test_every_app_route_and_the_configured_return_urls_answer_the_app_shell(
    served: tuple[WebAppServer, list[tuple[str | None, str | None]]],
) -> None:
    # Given the server; When each client-side route (success with its query) is asked for
    server, _ = served
    shell = (WEBAPP_DIR / "index.html").read_text()
    for path in [*APP_ROUTES, "/billing/success?session_id=cs_test_abc"]:
        response = requests.get(url(server, path), timeout=5)
        # Then each is the app's shell, with a CSP allowing only itself and the API
        assert response.status_code == 200, path
        assert response.text == shell
        assert "connect-src 'self' http://127.0.0.1:3000;" in response.headers["Content-Security-Policy"]
    # And the scripts and the configuration are served with their types
    assert requests.get(url(server, "/app.js"), timeout=5).headers["Content-Type"].startswith("text/javascript")
    assert requests.get(url(server, "/config.json"), timeout=5).json() == {"api_url": "http://127.0.0.1:3000/dev"}


@pytest.mark.parametrize(
    "path", ["/nope", "/../README.md", "/../../Makefile", "/%2e%2e/Makefile", "/README.md", "/.hidden", "/billing/x"]
)
def test_nothing_outside_the_app_is_served(
    served: tuple[WebAppServer, list[tuple[str | None, str | None]]], path: str
) -> None:
    # Given the server; When a path outside the app (or not part of it) is asked for, sent as is (no client-side
    # normalisation of "..")
    server, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", frontend_port(server.origin), timeout=5)
    connection.request("GET", path)
    # Then it is a 404 (control: /app.js is served, in the test above)
    assert connection.getresponse().status == 404
    assert server.file_for(path) is None


def test_sign_in_mints_only_for_same_origin_well_formed_requests(
    served: tuple[WebAppServer, list[tuple[str | None, str | None]]],
) -> None:
    server, issued = served

    def sign_in(body: object, origin: str | None) -> requests.Response:
        headers = {"Origin": origin} if origin else {}
        return requests.post(url(server, "/dev/sign-in"), json=body, headers=headers, timeout=5)

    # When the app signs in as the dev user and as another user id
    dev = sign_in({}, server.origin)
    other = sign_in({"user_id": "user-123"}, server.origin)
    # Then each gets a token for exactly that identity
    assert dev.json() == {"token": "token-for-dev", "name": "dev user"}
    assert other.json() == {"token": "token-for-user-123", "name": "user-123@example.com"}
    # When another site, no origin, a malformed id or a non-object asks
    refused = [
        sign_in({"user_id": "x"}, "http://evil.example"),
        sign_in({"user_id": "x"}, None),
        sign_in({"user_id": "a b<script>"}, server.origin),
        sign_in(["user_id"], server.origin),
    ]
    # Then each is refused with the API's error shape and no token was issued for them (control: the two above)
    assert [r.status_code for r in refused] == [403, 403, 400, 400]
    assert all(set(r.json()) == {"error"} for r in refused)
    assert issued == [(None, None), ("user-123", "user-123@example.com")]


def test_the_frontend_port_comes_from_a_local_origin_only() -> None:
    assert frontend_port("http://localhost:5173") == 5173
    with pytest.raises(ValueError, match="localhost"):
        frontend_port("https://app.example.com")
