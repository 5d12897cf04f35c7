"""A scripted stand-in for api.stripe.com on 127.0.0.1, so the real StripeClient (transport, retries, timeouts,
error parsing) runs end to end without network access."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class ScriptedStripe:
    """Answers each request with the next scripted reply (the last one repeats) and records what it received."""

    base_url: str = ""
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def next_reply(self) -> Reply:
        if len(self.replies) > 1:
            return self.replies.pop(0)
        return self.replies[0] if self.replies else Reply(200, {"id": "cus_A", "object": "customer"})


def stripe_error(kind: str, status: int, code: str | None = None, message: str = "scripted") -> Reply:
    return Reply(status, {"error": {"type": kind, "code": code, "message": message, "param": "customer"}})


@pytest.fixture
def scripted_stripe() -> Iterator[ScriptedStripe]:
    state = ScriptedStripe()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length).decode() if length else "",
                }
            )
            reply = state.next_reply()
            if reply.delay_seconds:
                time.sleep(reply.delay_seconds)
            payload = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.send_header("request-id", f"req_{len(state.requests)}")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
