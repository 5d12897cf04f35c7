"""Cold start: what a function's typical request does not use is not imported at init (issue 10,
bench/first_request_bench.py measures the gain)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def modules_after_importing(function: str, *modules: str) -> dict[str, bool]:
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT / 'functions' / function)!r}, {str(ROOT / 'layers' / 'common')!r}]\n"
        "import app\n"
        f"print(' '.join(str(m in sys.modules) for m in {list(modules)!r}))\n"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "false"}  # as deployed: the Tracer patches at init
    answer = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return dict(zip(modules, (flag == "True" for flag in answer.stdout.split()), strict=True))


def test_the_webhook_imports_neither_stripe_nor_requests_at_init() -> None:
    # Given the webhook function, whose typical delivery (a snapshot event) never calls Stripe
    # When its module is imported with tracing on
    loaded = modules_after_importing("webhook", "stripe", "requests", "sqlite3", "tollgate.domain.provisioning")
    # Then the Stripe SDK, the requests stack X-Ray's patch_all would import, and the provisioning domain stay unloaded
    assert loaded == {"stripe": False, "requests": False, "sqlite3": False, "tollgate.domain.provisioning": False}


def test_building_the_stripe_client_patches_requests_for_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the tracer (it patches only botocore at init)
    from tollgate.adapters import stripe_client
    from tollgate.config import Settings

    patched: list[tuple[str, ...]] = []
    monkeypatch.setattr(stripe_client.tracer, "patch", lambda modules: patched.append(tuple(modules)))
    # When the Stripe client is built
    settings = Settings.from_environment({"TABLE_NAME": "tollgate-test", "STRIPE_SECRET_ARN": "arn:secret"})
    stripe_client.build_stripe_client(settings, "sk" + "_test_" + "lazy")
    # Then Stripe's HTTP calls (through requests) are traced from then on
    assert patched == [("requests",)]
