"""Stripe calls per Checkout and Portal session (new user, returning user), counted in the emulator's request log.

Runs the real checkout/portal handlers and composition root against moto and the in-process Stripe emulator.
Counts are exact (not timings), so no floor is needed; the design target is 1 call for a returning user and at
most 2 for a new one (customer + session).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.harness import BenchOptions

TITLE = "Stripe calls per session (checkout, portal)"


def run(options: BenchOptions) -> str:
    layer = str(Path(__file__).resolve().parents[1] / "layers" / "common")
    if layer not in sys.path:
        sys.path.insert(0, layer)  # the Lambda layer's package, as the runtime puts it on the path
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TABLE_NAME": "tollgate-bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from devstack.stripe_emulator import StripeEmulator
    from tests.support.events import FakeLambdaContext, http_api_event
    from tests.support.template import table_definition
    from tollgate import bootstrap
    from tollgate.config import get_settings

    key = "sk" + "_test_" + secrets.token_hex(12)
    emu = StripeEmulator(api_keys=(key,))
    emu.start()
    try:
        with mock_aws():
            boto3.client("dynamodb").create_table(TableName="tollgate-bench", **table_definition())
            arn = boto3.client("secretsmanager").create_secret(Name="bench", SecretString=json.dumps({"api_key": key}))
            os.environ.update(
                {
                    "STRIPE_SECRET_ARN": arn["ARN"],
                    "STRIPE_API_BASE": emu.url,
                    "PLAN_CATALOG": json.dumps(
                        {"plans": [{"key": "starter", "name": "Starter", "price_lookup_key": "starter_monthly"}]}
                    ),
                    "CHECKOUT_SUCCESS_URL": "https://app.example.test/ok?session_id={CHECKOUT_SESSION_ID}",
                    "CHECKOUT_CANCEL_URL": "https://app.example.test/pricing",
                    "PORTAL_RETURN_URL": "https://app.example.test/account",
                    "SESSION_RATE_LIMIT_PER_MINUTE": "1000",
                }
            )
            get_settings.cache_clear()
            bootstrap.reset_container(None)
            from functions.checkout import app as checkout_app
            from functions.portal import app as portal_app

            def stripe_posts() -> int:
                return sum(1 for r in emu.request_log if r["method"] == "POST" and r["path"].startswith("/v1/"))

            def invoke(app: Any, path: str, user: str, body: dict[str, Any] | None) -> None:
                response = app.handler(
                    http_api_event("POST", path, body=body, claims={"sub": user}), FakeLambdaContext()
                )
                assert response["statusCode"] == 200, response["body"]

            checkout_app.handler(http_api_event("GET", "/plans"), FakeLambdaContext())  # catalog resolved once
            counts: dict[str, list[int]] = {"checkout, new user": [], "checkout, returning user": [], "portal": []}
            for i in range(options.rounds):
                user = f"bench-user-{i}"
                for scenario, app, path, body in (
                    ("checkout, new user", checkout_app, "/checkout/sessions", {"plan": "starter"}),
                    (
                        "checkout, returning user",
                        checkout_app,
                        "/checkout/sessions",
                        {"plan": "starter", "quantity": 1},
                    ),
                    ("portal", portal_app, "/portal/sessions", None),
                ):
                    if options.only and options.only not in scenario:
                        continue
                    before = stripe_posts()
                    invoke(app, path, user, body)
                    counts[scenario].append(stripe_posts() - before)
    finally:
        emu.stop()
        bootstrap.reset_container(None)
    rows = ["| scenario | Stripe calls per session (median) | max | sessions |", "|---|---|---|---|"]
    for scenario, values in counts.items():
        if values:
            rows.append(f"| {scenario} | {statistics.median(values):g} | {max(values)} | {len(values)} |")
    return "\n".join(rows)
