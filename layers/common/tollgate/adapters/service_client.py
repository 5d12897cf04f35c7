"""A client for the IAM service routes, for the app's own backends (Python): SigV4-signed HTTPS requests.

    from tollgate.adapters.service_client import BillingServiceClient
    billing = BillingServiceClient("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    if billing.has_feature(user_id, "advanced_reports"): ...

Credentials come from the default AWS chain (the backend's role, which needs the stack's ``ServiceReaderPolicyArn``
or ``ServiceCustomerAdminPolicyArn`` attached) unless given. Each request is signed with botocore's SigV4 for the
``execute-api`` service, including the body's hash. Why HTTPS rather than reading the table directly: the access
decision stays in one place (the product's ``decide_access`` and its settings), the caller needs no table or schema
knowledge and no DynamoDB permission, and the route costs one API Gateway request and one warm Lambda invoke.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "execute-api"


class ServiceCallFailed(Exception):
    """The service route answered with an error: ``status`` and the product's ``{"error": ...}`` body (or API
    Gateway's ``{"message": ...}`` when the request was refused before the function)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class BillingServiceClient:
    def __init__(
        self,
        api_url: str,
        *,
        region: str | None = None,
        credentials: Credentials | None = None,
        timeout_seconds: float = 3.0,
    ) -> None:
        parts = urllib.parse.urlsplit(api_url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("the API URL must be https (http only for the local stack on loopback)")
        session = boto3.session.Session()
        self._api_url = api_url.rstrip("/")
        self._region = region or session.region_name or "us-east-1"
        resolved = credentials or session.get_credentials()
        if resolved is None:
            raise ValueError("no AWS credentials: give credentials= or configure the default chain")
        self._credentials = resolved
        self._timeout = timeout_seconds

    # ---- the routes ---------------------------------------------------------------------------------------

    def billing(self, user_id: str) -> dict[str, Any]:
        """The same body ``GET /billing/subscription`` gives that user: status, plan, access (allowed, reason,
        until) and features."""
        return self._call("GET", f"/service/users/{_segment(user_id)}/billing")

    def has_feature(self, user_id: str, feature: str) -> bool:
        answer = self._call("GET", f"/service/users/{_segment(user_id)}/features/{_segment(feature)}")
        return bool(answer["enabled"])

    def update_customer(self, user_id: str, *, email: str | None = None, name: str | None = None) -> dict[str, Any]:
        details = {k: v for k, v in (("email", email), ("name", name)) if v is not None}
        return self._call("PUT", f"/service/users/{_segment(user_id)}/customer", details)

    def erase_user(self, user_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/service/users/{_segment(user_id)}")

    # ---- signing --------------------------------------------------------------------------------------------

    def signed_request(self, method: str, path: str, body: bytes = b"") -> urllib.request.Request:
        url = self._api_url + path
        headers = {"content-type": "application/json"} if body else {}
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self._region).add_auth(request)
        # The scheme was checked in __init__ (https, or http on loopback).
        return urllib.request.Request(  # noqa: S310
            url, data=body or None, headers=dict(request.headers.items()), method=method
        )

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(payload).encode() if payload is not None else b""
        request = self.signed_request(method, path, body)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - our API's URL
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as failure:
            raw = failure.read()
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {"message": raw.decode("utf-8", "replace")[:200]}
            raise ServiceCallFailed(failure.code, answer if isinstance(answer, dict) else {}) from None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")
