"""Real-shaped Lambda events: the recorded ones under tests/events/ (one loader, ``load_event``), API Gateway
HTTP API (payload 2.0) and SQS events built from them, and a Lambda context."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"

#: Headers of the recorded events that belong to the recorded request only; each test states its own.
_REQUEST_SPECIFIC_HEADERS = frozenset({"authorization", "content-length", "content-type", "stripe-signature"})


def load_event(name: str) -> dict[str, Any]:
    """A real-shaped event from ``tests/events/<name>.json`` (``stripe/...``, ``sqs/...``, ``apigw/...``), as a
    fresh copy the test may change."""
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


def http_api_event(
    method: str,
    path: str,
    *,
    body: str | bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
    scopes: list[str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    route_key: str | None = None,
    iam: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event as API Gateway HTTP API builds it, starting from a recorded one in ``tests/events/apigw/`` (an
    authorized route, the public plan list, or Stripe's webhook delivery) with this request's parts filled in.

    ``claims`` given means the JWT authorizer verified a token with those claims; ``iam`` given means the IAM
    authorizer verified a SigV4 signature of that principal (``requestContext.authorizer.iam``); neither means a
    public route.
    """
    if iam is not None:
        event = load_event("apigw/http_api_iam")
    elif claims is not None:
        event = load_event("apigw/http_api_jwt")
    elif path.startswith("/webhooks/"):
        event = load_event("apigw/stripe_webhook")
    else:
        event = load_event("apigw/http_api_public")
    raw: bytes | None
    if isinstance(body, dict):
        raw = json.dumps(body).encode()
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = body
    lowered = {k: v for k, v in event["headers"].items() if k not in _REQUEST_SPECIFIC_HEADERS}
    lowered.update({k.lower(): v for k, v in (headers or {}).items()})
    if raw is not None and "content-type" not in lowered:
        lowered["content-type"] = "application/json"
    route = route_key or f"{method} {path}"
    context = event["requestContext"]
    event.update(
        {
            "routeKey": route,
            "rawPath": path,
            "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
            "headers": lowered,
            "isBase64Encoded": base64_body,
        }
    )
    context["http"].update({"method": method, "path": path, "userAgent": lowered.get("user-agent", "pytest")})
    context.update(
        {
            "requestId": uuid.uuid4().hex,
            "routeKey": route,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        }
    )
    event.pop("body", None)
    event.pop("pathParameters", None)  # the recorded request's: this request's come from ``path_parameters``
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if raw is not None:
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
    _authorize(context, claims, scopes, iam)
    return event


def _authorize(
    context: dict[str, Any], claims: dict[str, Any] | None, scopes: list[str] | None, iam: dict[str, Any] | None
) -> None:
    """What the route's authorizer verified: the JWT's claims, or the IAM caller (over the recorded one)."""
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes or []}}
    if iam is not None:
        context["authorizer"] = {"iam": {**context["authorizer"]["iam"], **iam}}


def sqs_event(bodies: list[str], *, queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:usage") -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


@dataclass
class FakeLambdaContext:
    """Enough of LambdaContext for Powertools and for lease lengths bounded by the remaining time."""

    function_name: str = "tollgate-test"
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 10.0
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tollgate-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


#: The partner event source of the recorded EventBridge envelope (tests/events/eventbridge/).
RECORDED_PARTNER_SOURCE = "aws.partner/stripe.com/ed_test_61RecordedEventBridgeDestination01"


def eventbridge_envelope(
    stripe_event: dict[str, Any], *, source: str = RECORDED_PARTNER_SOURCE, account: str = "123456789012"
) -> dict[str, Any]:
    """A Stripe event as Stripe's EventBridge destination delivers it: the recorded envelope around the event
    (``detail-type`` its type, ``detail`` the event itself)."""
    envelope = load_event("eventbridge/stripe_snapshot_envelope")
    envelope.update(
        {"id": str(uuid.uuid4()), "source": source, "account": account, "detail-type": stripe_event.get("type")}
    )
    envelope["detail"] = stripe_event
    return envelope
