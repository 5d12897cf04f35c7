"""The HTTP front: a threaded stdlib server that hands each request to the emulator's pipeline.

Using `http.server` directly gives full control over the socket, which the `drop_connection` fault needs
(close without writing a response).
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from .clock import Clock
from .routing import DROP, Response


class Handles(Protocol):
    """What answers the requests (the emulator)."""

    def handle(self, method: str, raw_path: str, raw_headers: dict[str, str], body: bytes) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripe-emulator"
    sys_version = ""
    emulator: Handles
    clock: Clock

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the emulator keeps its own request log."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header on the emulator's clock, as Stripe's is on Stripe's (clients read it as "now")."""
        return email.utils.formatdate(self.clock.now() if timestamp is None else timestamp, usegmt=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.emulator.handle(self.command, self.path, dict(self.headers.items()), body)
        if response is DROP:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        headers = dict(response.headers)
        headers.setdefault("Content-Type", response.content_type)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve
    do_HEAD = _serve


class EmulatorServer:
    """Owns the listening socket and the serving thread."""

    def __init__(self, emulator: Handles, clock: Clock, host: str, port: int) -> None:
        handler = type("BoundHandler", (_Handler,), {"emulator": emulator, "clock": clock})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="stripe-emulator", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
