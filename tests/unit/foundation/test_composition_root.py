"""The composition root builds nothing until asked, builds each client once, and rebuilds the Stripe client only
when the key in Secrets Manager changes."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from pydantic import SecretStr

from tollgate import bootstrap
from tollgate.adapters.secrets_manager import StripeSecrets
from tollgate.config import Settings
from tollgate.errors import ConfigurationError

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tollgate/stripe"


def make_key() -> str:
    return "sk" + "_test_" + secrets.token_hex(12)


def settings() -> Settings:
    return Settings(table_name="tollgate-test", stripe_secret_arn=SECRET_ARN)


class Counter:
    def __init__(self, make: Any) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._make = make

    def __call__(self, *args: Any) -> Any:
        self.calls.append(args)
        return self._make(*args)


def test_a_new_container_has_built_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given factories that record every build
    dynamodb = Counter(object)
    secret_reads = Counter(lambda *_: pytest.fail("secrets read at construction"))
    monkeypatch.setattr("tollgate.adapters.aws.dynamodb_client", dynamodb)
    monkeypatch.setattr(bootstrap, "load_stripe_secrets", secret_reads)
    # When a container is created
    bootstrap.Container(settings())
    # Then no client was built and no secret read
    assert dynamodb.calls == []
    assert secret_reads.calls == []


def test_each_aws_client_is_built_once_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    built = {name: Counter(object) for name in ("dynamodb_client", "sqs_client", "events_client")}
    for name, counter in built.items():
        monkeypatch.setattr(f"tollgate.adapters.aws.{name}", counter)
    container = bootstrap.Container(settings())
    # When each client is used twice
    first = (container.dynamodb, container.sqs, container.events)
    second = (container.dynamodb, container.sqs, container.events)
    # Then each was built exactly once and reused
    assert first == second
    assert {name: len(counter.calls) for name, counter in built.items()} == {
        "dynamodb_client": 1,
        "sqs_client": 1,
        "events_client": 1,
    }


def test_settings_are_parsed_on_first_use_not_at_construction(
    monkeypatch: pytest.MonkeyPatch, fresh_container: bootstrap.Container
) -> None:
    # Given an environment missing the table name
    monkeypatch.delenv("TABLE_NAME")
    from tollgate.config import get_settings

    get_settings.cache_clear()
    container = bootstrap.Container()
    # When the settings are first needed / Then the cold start fails loudly, naming the variable
    with pytest.raises(ConfigurationError, match="TABLE_NAME"):
        _ = container.settings


def test_stripe_client_is_reused_until_the_key_rotates(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a secret store whose key can change
    current = {"key": make_key()}
    monkeypatch.setattr(
        bootstrap,
        "load_stripe_secrets",
        lambda *_, **__: StripeSecrets(api_key=SecretStr(current["key"])),
    )
    builds = Counter(lambda _settings, key: {"client_for": key})
    monkeypatch.setattr("tollgate.adapters.stripe_client.build_stripe_client", builds)
    container = bootstrap.Container(settings())
    # When the client is used twice, the key rotates, and it is used again
    first = container.stripe()
    again = container.stripe()
    current["key"] = make_key()
    rotated = container.stripe()
    # Then it was built once per key
    assert first is again
    assert rotated is not first
    assert len(builds.calls) == 2


def test_process_wide_container_is_one_object(fresh_container: bootstrap.Container) -> None:
    assert bootstrap.container() is fresh_container
    replacement = bootstrap.Container(settings())
    bootstrap.reset_container(replacement)
    assert bootstrap.container() is replacement
