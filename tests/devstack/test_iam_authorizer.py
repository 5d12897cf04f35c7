"""IAM (SigV4) authorization on the local HTTP API, as API Gateway applies it to the template's AWS_IAM routes.

Requests are signed by the product's own client helper (tollgate.adapters.service_client, botocore's SigV4), sent
over a real socket, and the function is a recording invoker, so "refused before the handler" is observable.
"""

from __future__ import annotations

import calendar
import fnmatch
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.credentials import Credentials

from devstack.http_api import HttpApiEmulator
from devstack.iam_authorizer import (
    MAX_CLOCK_SKEW_SECONDS,
    IamDenied,
    IamRequest,
    LocalPrincipals,
    Principal,
    authorize,
    invoke_patterns_from_template,
)
from devstack.template import ACCOUNT_ID, load_template
from tests.devstack.test_http_api import Keys, RecordingInvoker, keys, mint, template_spec  # noqa: F401 - fixture
from tollgate.adapters.service_client import BillingServiceClient

TEMPLATE = load_template()
READER = invoke_patterns_from_template(TEMPLATE, "ServiceReaderPolicy")
ADMIN = READER + invoke_patterns_from_template(TEMPLATE, "ServiceCustomerAdminPolicy")


class Api:
    def __init__(self, url: str, invoker: RecordingInvoker, principals: LocalPrincipals) -> None:
        self.url, self.invoker, self.principals = url, invoker, principals

    def client(self, principal: Principal, *, secret: str | None = None) -> BillingServiceClient:
        credentials = Credentials(principal.access_key_id, secret or principal.secret_access_key)
        return BillingServiceClient(self.url, region="us-east-1", credentials=credentials)

    def send(self, request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as failure:
            return failure.code, json.loads(failure.read())


@pytest.fixture(scope="module")
def api(keys: Keys) -> Iterator[Api]:  # noqa: F811 - the imported fixture
    invoker = RecordingInvoker()
    principals = LocalPrincipals()
    emulator = HttpApiEmulator(template_spec(), invoker, lambda issuer: keys.jwks, principals=principals)
    url = emulator.start("127.0.0.1", 0)
    yield Api(url, invoker, principals)
    emulator.stop()


@pytest.fixture
def reader(api: Api) -> Principal:
    api.invoker.events.clear()
    return api.principals.create(ACCOUNT_ID, "app-backend-reader", READER)


@pytest.fixture
def admin(api: Api) -> Principal:
    return api.principals.create(ACCOUNT_ID, "app-backend-admin", ADMIN)


def test_a_signed_request_reaches_the_function_with_the_iam_caller(api: Api, reader: Principal) -> None:
    # Given a principal of this account holding the reader policy
    # When it asks for a user's billing with a SigV4-signed request
    status, body = api.send(api.client(reader).signed_request("GET", "/service/users/user-1/billing"))
    # Then the function was invoked with the route, the user in the path, and the verified caller
    assert (status, body) == (200, {"reached": True})
    function_id, event = api.invoker.last()
    assert function_id == "PortalFunction"
    assert event["routeKey"] == "GET /service/users/{user_id}/billing"
    assert event["pathParameters"] == {"user_id": "user-1"}
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == reader.access_key_id
    assert iam["accountId"] == event["requestContext"]["accountId"] == ACCOUNT_ID
    assert iam["userArn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/app-backend-reader"
    assert "jwt" not in event["requestContext"]["authorizer"]


def unsigned(api: Api, path: str, headers: dict[str, str] | None = None) -> urllib.request.Request:
    return urllib.request.Request(api.url + path, headers=headers or {}, method="GET")


@pytest.mark.parametrize(
    "case",
    ["unsigned", "user-jwt", "wrong-secret", "unknown-key", "other-user-in-path", "foreign-account", "session-token"],
)
def test_a_request_not_signed_by_a_principal_of_this_account_is_refused_before_the_function(
    api: Api,
    reader: Principal,
    keys: Keys,  # noqa: F811 - the imported fixture
    case: str,
) -> None:
    path = "/service/users/user-1/billing"
    if case == "unsigned":
        request = unsigned(api, path)
    elif case == "user-jwt":  # a signed-in user's valid token is not an IAM signature
        request = unsigned(api, path, {"Authorization": f"Bearer {mint(keys)}"})
    elif case == "wrong-secret":
        request = api.client(reader, secret="not-the-secret").signed_request("GET", path)
    elif case == "unknown-key":
        stranger = Principal("AKIASTRANGER0000000", "s3cret", ACCOUNT_ID, "stranger", READER)
        request = api.client(stranger).signed_request("GET", path)
    elif case == "other-user-in-path":  # signed for user-1, sent for user-2
        signed = api.client(reader).signed_request("GET", path)
        request = urllib.request.Request(
            api.url + "/service/users/user-2/billing", headers=dict(signed.header_items()), method="GET"
        )
    elif case == "foreign-account":  # valid keys and a policy granting the route, in another account
        foreign = api.principals.create("210987654321", "other-account-backend", READER)
        request = api.client(foreign).signed_request("GET", path)
    else:  # temporary credentials the local IAM never issued
        request = api.client(reader).signed_request("GET", path)
        request.add_header("X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLE")
    status, body = api.send(request)
    # Then API Gateway's 403 with its JSON message, and the function never ran
    assert status == 403
    assert set(body) == {"message"}
    assert api.invoker.events == []


def test_a_tampered_body_fails_the_signature(api: Api, admin: Principal) -> None:
    api.invoker.events.clear()
    # Given an admin's signed request setting a customer's email
    signed = api.client(admin).signed_request("PUT", "/service/users/user-1/customer", b'{"email":"a@example.com"}')
    # When the body is changed on the way
    tampered = urllib.request.Request(
        signed.full_url, data=b'{"email":"evil@example.com"}', headers=dict(signed.header_items()), method="PUT"
    )
    status, body = api.send(tampered)
    # Then the signature no longer matches; the untouched request (control) passes
    assert status == 403
    assert "signature" in body["message"]
    assert api.invoker.events == []
    assert api.send(signed)[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "reader_allowed"),
    [
        ("GET", "/service/users/u-1/billing", True),
        ("GET", "/service/users/u-1/features/reports", True),
        ("PUT", "/service/users/u-1/customer", False),
        ("DELETE", "/service/users/u-1", False),
    ],
)
def test_each_principal_reaches_exactly_the_routes_its_policy_grants(
    api: Api, reader: Principal, admin: Principal, method: str, path: str, reader_allowed: bool
) -> None:
    body = b'{"name":"Ada"}' if method == "PUT" else b""
    reader_status, reader_body = api.send(api.client(reader).signed_request(method, path, body))
    admin_status, _ = api.send(api.client(admin).signed_request(method, path, body))
    assert admin_status == 200
    assert reader_status == (200 if reader_allowed else 403)
    if not reader_allowed:
        assert reader_body["message"].startswith(f"User: {reader.user_arn} is not authorized")


def signed_iam_request(api: Api, principal: Principal) -> IamRequest:
    signed = api.client(principal).signed_request("GET", "/service/users/u-1/billing")
    headers = {k.lower(): v for k, v in signed.header_items()}
    url = urlsplit(signed.full_url)
    return IamRequest("GET", url.netloc, url.path, "", {**headers, "host": url.netloc}, b"", "GET/x")


def test_a_signature_older_or_newer_than_five_minutes_is_refused(api: Api, reader: Principal) -> None:
    request = signed_iam_request(api, reader)
    principals = LocalPrincipals()
    principals.add(replace(reader, invoke_patterns=("*",)))
    amz_date = request.headers["x-amz-date"]
    signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    # Within the window it passes (control); beyond it either way it is refused as expired
    assert authorize(request, principals, account_id=ACCOUNT_ID, region="us-east-1", now=lambda: signed_at + 60)
    for skew in (MAX_CLOCK_SKEW_SECONDS + 5, -(MAX_CLOCK_SKEW_SECONDS + 5)):
        with pytest.raises(IamDenied, match="Signature expired"):
            authorize(request, principals, account_id=ACCOUNT_ID, region="us-east-1", now=lambda s=skew: signed_at + s)


def test_a_signature_for_another_region_or_service_is_refused(api: Api, reader: Principal) -> None:
    request = signed_iam_request(api, reader)
    principals = LocalPrincipals()
    principals.add(replace(reader, invoke_patterns=("*",)))
    with pytest.raises(IamDenied):
        authorize(request, principals, account_id=ACCOUNT_ID, region="eu-west-1")


def test_the_service_routes_are_exactly_the_iam_routes_and_the_policies_cover_them() -> None:
    # Given the template's routes
    routes = template_spec().routes
    iam_routes = {r.route_key for r in routes if r.authorizer == "AWS_IAM"}
    service_routes = {r.route_key for r in routes if r.path.startswith("/service/")}
    # Then every /service/ route (and no other) uses IAM, and no JWT scope applies to them
    assert iam_routes == service_routes
    assert len(service_routes) == 4
    # And every service route is granted by the admin policy, the reader one grants only the GETs
    for route in service_routes:
        method, path = route.split(" ", 1)
        concrete = method + path.replace("{user_id}", "u-1").replace("{feature}", "reports")
        assert any(fnmatch.fnmatchcase(concrete, p) for p in ADMIN), route
        assert any(fnmatch.fnmatchcase(concrete, p) for p in READER) == (method == "GET"), route
    # And the stack exports both policies for callers
    outputs = TEMPLATE["Outputs"]
    assert outputs["ServiceReaderPolicyArn"]["Value"] == {"Ref": "ServiceReaderPolicy"}
    assert outputs["ServiceCustomerAdminPolicyArn"]["Value"] == {"Ref": "ServiceCustomerAdminPolicy"}
