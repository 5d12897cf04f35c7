"""API Gateway's IAM authorization (``Authorizer: AWS_IAM``) for the local HTTP API: Signature Version 4, checked
against the local stack's principals the way API Gateway checks it against IAM.

A request passes only when: it carries an ``AWS4-HMAC-SHA256`` Authorization header whose credential scope is the
stack's region and ``execute-api``; the access key belongs to a known principal; ``X-Amz-Date`` is within five
minutes of now and matches the scope's date; a signed ``X-Amz-Content-SHA256`` (if any) is the body's hash; the
signature, recomputed with the principal's secret over the signed headers, the path, the query and the body (by
botocore's own SigV4 code, the code every AWS SDK signs with), is the one sent; and the principal is in the API's
account and holds ``execute-api:Invoke`` on the route. HTTP APIs have no resource policies, so a principal of another
account is refused whatever its own policies say (it must assume a role in the API's account). Every refusal is a
403 with API Gateway's JSON message; a passing request reaches the function with ``requestContext.authorizer.iam``.
"""

from __future__ import annotations

import calendar
import fnmatch
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
#: SigV4 requests must reach AWS within five minutes of their timestamp (either way).
MAX_CLOCK_SKEW_SECONDS = 300

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")

FORBIDDEN = "Forbidden"
UNKNOWN_ACCESS_KEY_MESSAGE = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)


class IamDenied(Exception):
    """The request stops at IAM authorization: API Gateway answers 403 with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Principal:
    """An IAM user of the local stack: its keys, account, and the ``execute-api:Invoke`` resources its policies
    grant, as ``METHOD/path`` patterns after the stage (``GET/service/users/*/billing``; ``*`` spans ``/`` as in
    IAM)."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    user_name: str
    invoke_patterns: tuple[str, ...] = ()

    def may_invoke(self, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in self.invoke_patterns)

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{self.user_name}"

    @property
    def user_id(self) -> str:
        # IAM user ids are AIDA + 17 characters; derived so a principal keeps its id for the life of the stack.
        return "AIDA" + hashlib.sha256(self.access_key_id.encode()).hexdigest()[:17].upper()


class LocalPrincipals:
    """The principals the local IAM knows (thread-safe; tests add foreign or unprivileged ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Principal] = {}

    def add(self, principal: Principal) -> Principal:
        with self._lock:
            self._by_key[principal.access_key_id] = principal
        return principal

    def create(self, account_id: str, user_name: str, invoke_patterns: tuple[str, ...] = ()) -> Principal:
        key = "AKIA" + secrets.token_hex(8).upper()
        return self.add(Principal(key, secrets.token_urlsafe(30), account_id, user_name, invoke_patterns))

    def get(self, access_key_id: str) -> Principal | None:
        with self._lock:
            return self._by_key.get(access_key_id)


@dataclass(frozen=True)
class IamRequest:
    method: str
    host: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    resource: str = ""  # METHOD/path after the stage, what an execute-api:Invoke statement names


def _parse_amz_date(value: str) -> int:
    return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))


def expected_signature(request: IamRequest, principal: Principal, region: str, signed: list[str]) -> str:
    """The signature botocore computes for this request with the principal's secret, over exactly the headers the
    caller signed."""
    query = f"?{request.raw_query}" if request.raw_query else ""
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://{request.host}{request.raw_path}{query}",
        headers={name: request.headers.get(name, "") for name in signed},
        data=request.body,
    )
    amz_date = request.headers["x-amz-date"]
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(principal.access_key_id, principal.secret_access_key), SERVICE, region)
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    return str(signer.signature(string_to_sign, aws_request))


def _signing_facts(request: IamRequest, region: str, now: Callable[[], float]) -> tuple[str, list[str], str]:
    """(access key, signed header names, signature) of a well-formed, fresh SigV4 header for this API's scope."""
    match = _AUTHORIZATION.match(request.headers.get("authorization", "").strip())
    if match is None:
        raise IamDenied(FORBIDDEN)
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise IamDenied(FORBIDDEN)
    access_key, scope_date, scope_region, scope_service, _ = scope
    if scope_service != SERVICE or scope_region != region:
        raise IamDenied(SIGNATURE_MISMATCH)
    signed = match["signed"].split(";")
    if "host" not in signed or signed != sorted(signed):
        raise IamDenied(SIGNATURE_MISMATCH)
    amz_date = request.headers.get("x-amz-date", "")
    if "x-amz-date" not in signed or not _AMZ_DATE.match(amz_date) or amz_date[:8] != scope_date:
        raise IamDenied(FORBIDDEN)
    if abs(now() - _parse_amz_date(amz_date)) > MAX_CLOCK_SKEW_SECONDS:
        raise IamDenied(f"Signature expired: {amz_date} is now earlier or later than the allowed five minutes.")
    return access_key, signed, match["signature"]


def authorize(
    request: IamRequest,
    principals: LocalPrincipals,
    *,
    account_id: str,
    region: str,
    api_id: str = "localapi",
    stage: str = "$default",
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The ``requestContext.authorizer.iam`` object for a request that passes; raises IamDenied otherwise."""
    access_key, signed, signature = _signing_facts(request, region, now)
    principal = principals.get(access_key)
    if principal is None or "x-amz-security-token" in request.headers:
        raise IamDenied(UNKNOWN_ACCESS_KEY_MESSAGE)  # the local IAM issues no session tokens
    declared_hash = request.headers.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != hashlib.sha256(request.body).hexdigest():
        raise IamDenied(SIGNATURE_MISMATCH)  # includes UNSIGNED-PAYLOAD: the body must be signed
    if not hmac.compare_digest(expected_signature(request, principal, region, signed), signature):
        raise IamDenied(SIGNATURE_MISMATCH)
    if principal.account_id != account_id or not principal.may_invoke(request.resource):
        raise IamDenied(
            f"User: {principal.user_arn} is not authorized to perform: execute-api:Invoke on resource: "
            f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{request.resource}"
        )
    return {
        "accessKey": principal.access_key_id,
        "accountId": principal.account_id,
        "callerId": principal.user_id,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": principal.user_arn,
        "userId": principal.user_id,
    }


def invoke_patterns_from_template(template: Mapping[str, Any], policy_id: str) -> tuple[str, ...]:
    """The ``METHOD/path`` patterns one of the template's managed policies grants ``execute-api:Invoke`` on: the
    part of each resource ARN after ``${Stage}/``, so the local principals hold exactly what the policy grants."""
    document = template["Resources"][policy_id]["Properties"]["PolicyDocument"]
    patterns: list[str] = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement.get("Effect") != "Allow" or "execute-api:Invoke" not in actions:
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            text = resource["Fn::Sub"] if isinstance(resource, dict) else str(resource)
            patterns.append(text.split("${Stage}/", 1)[1])
    return tuple(patterns)
