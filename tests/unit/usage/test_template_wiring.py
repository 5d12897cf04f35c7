"""The usage function's configuration in template.yaml reaches the reporter: meters it may send, its transport."""

from __future__ import annotations

import json

import pytest

from devstack.template import Resolver
from tests.support.template import load_template
from tollgate.config import Settings
from tollgate.services.usage_reporter import UsageOutcome, UsageReporter

from .fakes import NOW, FakeDirectory, FakeParking, FakeTransport, InMemoryLedger, record, usage


def usage_function_settings(**overrides: str) -> Settings:
    """Settings as the deployed usage function reads them (template defaults, or parameter overrides)."""
    template = load_template()
    variables = template["Resources"]["UsageFunction"]["Properties"]["Environment"]["Variables"]
    resolver = Resolver(template, parameter_overrides=overrides)
    environ = {
        "TABLE_NAME": "tollgate-test",
        "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
        **{name: str(resolver.resolve(variables[name])) for name in ("USAGE_METER_EVENT_NAMES", "USAGE_TRANSPORT")},
    }
    return Settings.from_environment(environ)


def reporter_for(settings: Settings, transport: FakeTransport, parking: FakeParking) -> UsageReporter:
    return UsageReporter(
        ledger=InMemoryLedger(),
        transport=transport,
        directory=FakeDirectory(),
        parking=parking,
        known_meters=settings.usage_meter_event_names,
        clock=lambda: NOW,
    )


def test_the_template_gives_the_usage_function_its_meters_and_the_stream_transport() -> None:
    settings = usage_function_settings()
    assert settings.usage_meter_event_names == frozenset({"api_tokens"})
    assert settings.usage_transport == "stream"
    # And the fallback and a longer meter list are one parameter away
    other = usage_function_settings(UsageMeterEventNames="api_tokens,gpu_seconds", UsageTransport="v1")
    assert other.usage_meter_event_names == frozenset({"api_tokens", "gpu_seconds"})
    assert other.usage_transport == "v1"


@pytest.mark.parametrize("configured", [True, False], ids=["template", "control-unconfigured"])
def test_an_unknown_meter_is_parked_locally_without_a_stripe_call(configured: bool) -> None:
    # Given the usage function configured from the template (or, as the control, with no meter list)
    settings = (
        usage_function_settings() if configured else Settings(table_name="tollgate-test", stripe_secret_arn="arn:x")
    )
    transport, parking = FakeTransport(), FakeParking()
    # When a record names a meter the template does not list
    outcomes = reporter_for(settings, transport, parking).report(
        [record(json.dumps(usage("gpu-1", event_name="gpu_seconds")), "m1")]
    )
    # Then it is parked as unknown_meter and Stripe is never called; unconfigured, it would go to Stripe
    if configured:
        assert outcomes["m1"].outcome is UsageOutcome.PARKED
        assert outcomes["m1"].reason == "unknown_meter"
        assert transport.requests == []
    else:
        assert outcomes["m1"].outcome is UsageOutcome.SENT
        assert len(transport.requests) == 1
