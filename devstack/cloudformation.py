"""CloudFormation's side of a custom resource, played locally: the request event, and the pre-signed S3 response
URL the function PUTs its answer to.

CloudFormation invokes the resource's function with a ``Create``/``Update``/``Delete`` request event (its
``ResponseURL`` a pre-signed HTTPS URL) and waits for the function's ``PUT`` of ``{"Status", "Reason",
"PhysicalResourceId", "Data", ...}`` there. ``ResponseServer`` is that URL on 127.0.0.1, over TLS with a throwaway
certificate authority (``ca_file``: the function trusts it through ``SSL_CERT_FILE``, as Lambda trusts S3's);
``CustomResourcePlayer`` builds the events and waits for each answer. The local stack provisions Stripe through it
on every start, and the custom-resource tests drive create, update and delete with it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack.template import ACCOUNT_ID, REGION

RESPONSE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class CustomResourceResponse:
    """What the function answered on the response URL."""

    status: str
    reason: str
    physical_id: str
    data: dict[str, Any]
    raw: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"


def _throwaway_authority(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own authority) and its key, written to ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devstack cloudformation responses")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "ca.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return cert_file, key_file


class ResponseServer:
    """Pre-signed response URLs on https://127.0.0.1: each ``url()`` is one request's; ``wait`` returns its answer."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="tollgate-cfn-"))
        self.ca_file, key_file = _throwaway_authority(self._dir)
        self._answers: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
                try:
                    answer = json.loads(body)
                except json.JSONDecodeError:
                    answer = {"Status": "FAILED", "Reason": "the response body is not JSON"}
                with server._arrived:
                    server._answers[token] = answer
                    server._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.base = f"https://{host}:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True, name="cfn-responses").start()

    def url(self) -> tuple[str, str]:
        """A fresh response URL, shaped like S3's pre-signed one, and its token."""
        token = uuid.uuid4().hex
        return f"{self.base}/cloudformation-custom-resource-response-useast1/{token}?X-Amz-Signature=local", token

    def wait(self, token: str, timeout: float = RESPONSE_TIMEOUT_SECONDS) -> dict[str, Any] | None:
        with self._arrived:
            self._arrived.wait_for(lambda: token in self._answers, timeout=timeout)
            return self._answers.get(token)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        for path in self._dir.iterdir():
            path.unlink()
        self._dir.rmdir()


@dataclass
class CustomResourcePlayer:
    """Sends one custom resource's request events to its function and collects the answers, as CloudFormation."""

    invoke: Callable[[dict[str, Any]], Any]
    responses: ResponseServer
    stack_name: str = "tollgate"
    region: str = REGION
    account_id: str = ACCOUNT_ID
    stack_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.stack_id:
            self.stack_id = (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/{uuid.uuid4()}"
            )

    def event(
        self,
        request_type: str,
        logical_id: str,
        resource_type: str,
        properties: Mapping[str, Any],
        *,
        physical_id: str | None = None,
        old_properties: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """A request event as CloudFormation sends it (property values are strings), and its response token."""
        url, token = self.responses.url()
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": str(properties.get("ServiceToken", "")),
            "ResponseURL": url,
            "StackId": self.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": _strings(properties),
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = _strings(old_properties)
        return event, token

    def send(
        self, event: dict[str, Any], token: str, timeout: float = RESPONSE_TIMEOUT_SECONDS
    ) -> CustomResourceResponse:
        """Invoke the function with ``event``; its answer is what it PUT on the response URL (never its result)."""
        try:
            self.invoke(event)
        except Exception as exc:
            answer = self.responses.wait(token, timeout=5.0)
            if answer is None:
                return CustomResourceResponse("FAILED", f"the function failed without answering: {exc}", "", {}, {})
        else:
            answer = self.responses.wait(token, timeout)
        if answer is None:
            return CustomResourceResponse("FAILED", "no answer on the response URL (timed out)", "", {}, {})
        return CustomResourceResponse(
            status=str(answer.get("Status")),
            reason=str(answer.get("Reason") or ""),
            physical_id=str(answer.get("PhysicalResourceId") or ""),
            data=dict(answer.get("Data") or {}),
            raw=answer,
        )

    def create(self, logical_id: str, resource_type: str, properties: Mapping[str, Any]) -> CustomResourceResponse:
        return self.send(*self.event("Create", logical_id, resource_type, properties))

    def update(
        self,
        logical_id: str,
        resource_type: str,
        physical_id: str,
        properties: Mapping[str, Any],
        old_properties: Mapping[str, Any],
    ) -> CustomResourceResponse:
        event, token = self.event(
            "Update", logical_id, resource_type, properties, physical_id=physical_id, old_properties=old_properties
        )
        return self.send(event, token)

    def delete(
        self, logical_id: str, resource_type: str, physical_id: str, properties: Mapping[str, Any]
    ) -> CustomResourceResponse:
        return self.send(*self.event("Delete", logical_id, resource_type, properties, physical_id=physical_id))


def _strings(properties: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation passes every scalar property value to a custom resource as a string."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return {k: convert(v) for k, v in properties.items()}
