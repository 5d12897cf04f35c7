"""The example web app (``webapp/``) served at the stack's frontend origin, as a static host would serve it.

Plain files, no build step. Two additions a real host does not have, both local-only stand-ins:
``GET /config.json`` (where the API is: what a deployed app bakes in at deploy time) and ``POST /dev/sign-in``
(an access token for the dev user or any user id: what Cognito's hosted sign-in gives a deployed app).
Every path of the app's router answers ``index.html``, so the configured success, cancel and return URLs land on it.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.template import ROOT

log = logging.getLogger("devstack.webapp")

WEBAPP_DIR = ROOT / "webapp"
# The app's client-side routes (webapp/app.js, ROUTES): each answers the app's shell.
APP_ROUTES = frozenset({"/", "/sign-in", "/pricing", "/billing", "/billing/success", "/billing/cancel"})
USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
MAX_BODY_BYTES = 4096
# What the app is made of; anything else in webapp/ (its README, dotfiles) is not served.
SERVED_SUFFIXES = frozenset({".html", ".js", ".css", ".png", ".svg", ".ico"})

# Issues a token: (user_id or None for the seeded dev user, email or None) -> access token.
TokenIssuer = Callable[[str | None, str | None], str]


def frontend_port(origin: str) -> int:
    """The port of an origin such as ``http://localhost:5173`` (the first ``AllowedOrigins`` entry)."""
    parts = urlsplit(origin)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1"):
        raise ValueError(f"the local web app needs an http://localhost origin, not {origin!r}")
    return parts.port or 80


class WebAppServer:
    def __init__(
        self, config: dict[str, Any], issue_token: TokenIssuer, root: Path = WEBAPP_DIR, dev_user_name: str = "dev user"
    ) -> None:
        self.config = config
        self.dev_user_name = dev_user_name
        self.issue_token = issue_token
        self.root = root.resolve()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.origin = ""

    def start(self, host: str, port: int, origin: str) -> None:
        self.origin = origin
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="webapp", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- what the handler asks --------------------------------------------------------------------------

    def file_for(self, path: str) -> Path | None:
        if path in APP_ROUTES:
            return self.root / "index.html"
        candidate = (self.root / path.lstrip("/")).resolve()
        if candidate.is_relative_to(self.root) and candidate.is_file() and candidate.suffix in SERVED_SUFFIXES:
            return candidate
        return None

    def content_security_policy(self) -> str:
        api = urlsplit(str(self.config.get("api_url", "")))
        api_origin = f"{api.scheme}://{api.netloc}" if api.netloc else ""
        return (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {api_origin}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )

    def sign_in(self, origin: str | None, body: bytes | None) -> tuple[int, dict[str, Any]]:
        """``POST /dev/sign-in``: a token for ``{"user_id": ...}`` (empty: the dev user); status and JSON body."""
        # Same-origin only: another site open in the browser must not mint tokens.
        if origin != self.origin:
            return 403, {"error": {"status": 403, "reason": "cross-origin sign-in refused"}}
        if body is None:
            return 413, {"error": {"status": 413, "reason": "body too large"}}
        try:
            parsed = json.loads(body or b"{}")
            user_id = parsed.get("user_id") or None
        except (ValueError, AttributeError):
            return 400, {"error": {"status": 400, "reason": "body must be a JSON object"}}
        if user_id is not None and (not isinstance(user_id, str) or not USER_ID.match(user_id)):
            return 400, {"error": {"status": 400, "reason": "user_id: 1-128 of A-Z a-z 0-9 _ . @ -"}}
        email = f"{user_id}@example.com" if user_id else None
        try:
            token = self.issue_token(user_id, email)
        except Exception:  # the local Cognito not answering: say so, never a traceback to the page
            log.exception("dev sign-in failed")
            return 503, {"error": {"status": 503, "reason": "the local sign-in is not available"}}
        # Who the page says is signed in (the dev user's access token carries no email claim).
        return 200, {"token": token, "name": email or self.dev_user_name}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "tollgate-webapp"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                # A reference app sets the headers a frontend host should set.
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Security-Policy", app.content_security_policy())
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Referrer-Policy", "same-origin")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self._send(status, json.dumps(body).encode(), "application/json")

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/config.json":
                    self._json(200, app.config)
                    return
                file = app.file_for(path)
                if file is None:
                    self._send(404, b"<!doctype html><title>Not found</title><p>Not found</p>", "text/html")
                    return
                content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                if content_type.startswith("text/") or content_type.endswith("javascript"):
                    content_type += "; charset=utf-8"
                self._send(200, file.read_bytes(), content_type)

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/dev/sign-in":
                    self._json(404, {"error": {"status": 404, "reason": "not found"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length <= MAX_BODY_BYTES else None
                self._json(*app.sign_in(self.headers.get("Origin"), body))

        return Handler
