"""Property-based contract runs against the running local stack with schemathesis: every operation of the served
``GET /openapi.json``, generated (schema-valid) and hostile (schema-violating) requests, every response checked by
schemathesis' checks against the document. Failures are collected, not raised one by one, so one run reports them
all with the figures (requests, 5xx, violations)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi import checks as openapi_checks

from devstack.stack import LocalStack, mint_access_token

TIMEOUT = 30


class SigV4(requests.auth.AuthBase):
    """Signs a request as the app's backend does (tollgate.adapters.service_client): SigV4 for execute-api."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body or b""
        request = AWSRequest(
            method=prepared.method,
            url=prepared.url,
            data=body.encode() if isinstance(body, str) else body,
            headers={k: v for k, v in prepared.headers.items() if k.lower() not in ("authorization", "x-amz-date")},
        )
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(request)
        prepared.headers.update(dict(request.headers.items()))
        return prepared


@dataclass
class Callers:
    """Who sends each request: most carry a valid credential for the route (rotating over many users, so
    per-user rate limits do not answer everything), some none or a refused one (the 401/403 the document
    lists)."""

    stack: LocalStack
    users: list[str]
    #: Every request with a valid credential (no refused variants).
    every_one_valid: bool = False
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = self.stack.token_for(user, f"{user}@example.com")
        return self._tokens[user]

    def for_request(self, security: str | None, n: int) -> tuple[dict[str, str], Any]:
        """Headers and requests ``auth`` for the n-th request of an operation."""
        variant = 9 if self.every_one_valid else n % 10
        if security == "jwt":
            if variant == 0:
                return {"Authorization": ""}, None  # no token: the authorizer's 401
            if variant == 1:
                config = next(iter(self.stack.api.spec.authorizers.values()))  # type: ignore[union-attr]
                unscoped = mint_access_token(config.issuer, config.audience[0], ["other.scope"], self.users[0])
                return {"Authorization": f"Bearer {unscoped}"}, None  # a token without the scope: 403
            return {"Authorization": f"Bearer {self.token(self.users[n % len(self.users)])}"}, None
        if security == "sigv4":
            if variant == 0:
                return {"Authorization": ""}, None  # unsigned: 403 before the function
            principal = self.stack.service_callers["admin"]
            credentials = Credentials(principal.access_key_id, principal.secret_access_key)
            return {}, SigV4(credentials, self.stack.resolver.region)
        return {}, None


@dataclass
class Report:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    statuses_by_operation: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.server_errors} 5xx, {len(self.violations)} violations; "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )


#: Every response check schemathesis has that needs no stateful sequence: status documented, content type,
#: headers, body against the response schema, no 5xx, hostile input refused, valid input accepted.
CHECKS = [
    schemathesis.checks.not_a_server_error,  # type: ignore[attr-defined]
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.positive_data_acceptance,
]


def security_of(operation: Any) -> str | None:
    requirements = operation.definition.raw.get("security") or []
    names = [name for requirement in requirements for name in requirement]
    return names[0] if names else None


def generated_cases(operation: Any, mode: GenerationMode, examples: int, **fixed: Any) -> list[Any]:
    """Up to ``examples`` distinct cases of one operation (fewer when the schema has fewer: an operation without
    parameters has one valid request and no invalid one). ``fixed`` parts (e.g. ``body=``) are not generated."""
    cases: list[Any] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        return []  # nothing in the operation can be made invalid
    return cases


def send_and_check(
    operation: Any,
    cases: list[Any],
    callers: Callers,
    report: Report,
    session: requests.Session,
    concurrency: int,
    checks: Iterable[Callable[..., Any]] = CHECKS,
) -> None:
    """Sends the cases (the n-th with the n-th caller variant) a few at a time and checks every response;
    failures are recorded, never raised."""
    security = security_of(operation)
    lock = threading.Lock()
    seen: set[str] = set()

    def one(n: int, case: Any) -> None:
        headers, auth = callers.for_request(security, n)
        try:
            response = case.call(session=session, headers=headers, auth=auth, timeout=TIMEOUT)
        except requests.RequestException as exc:
            with lock:
                report.violations.append(f"{operation.label}: transport error {type(exc).__name__}")
            return
        try:
            case.validate_response(response, checks=list(checks), headers=headers)
            failure_text = None
        except (Failure, FailureGroup) as failure:
            failure_text = " ".join(str(failure).split())[:600]
        with lock:
            report.requests += 1
            report.statuses[response.status_code] += 1
            report.by_operation[operation.label] += 1
            report.statuses_by_operation[operation.label].add(response.status_code)
            if failure_text is not None:
                key = f"{operation.label}{response.status_code}{failure_text[:120]}"
                repeat = key in seen
                seen.add(key)
                report.violations.append(
                    f"{operation.label} -> {response.status_code}: {'(repeat)' if repeat else failure_text}"
                )

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(one, n, case) for n, case in enumerate(cases)]:
            future.result()
