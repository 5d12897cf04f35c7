"""SnapStart (template parameter ``SnapStart``): every function publishes a version behind the ``live`` alias, and
with SnapStart on, the runtime hooks build the typical request's collaborators before the snapshot and, after each
restore, forget cached secrets and reseed ``random``. On an ordinary cold start nothing is registered."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import snapshot_restore_py
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from devstack.template import load_template, resources_of_type
from tollgate import bootstrap
from tollgate.bootstrap import register_snapstart_hooks

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def hook_registries() -> Iterator[tuple[list[Any], list[Any]]]:
    """The runtime's registries, emptied around each test (the runtime reads them once per init)."""
    before, after = snapshot_restore_py.get_before_snapshot(), snapshot_restore_py.get_after_restore()
    saved = (list(before), list(after))
    before.clear()
    after.clear()
    yield before, after
    before[:] = saved[0]
    after[:] = saved[1]


def run(hooks: list[Any]) -> None:
    """What Lambda does with a registry: call each function with its registered arguments."""
    for function, args, kwargs in hooks:
        function(*args, **kwargs)


def test_an_ordinary_cold_start_registers_nothing(
    hook_registries: tuple[list[Any], list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    assert register_snapstart_hooks("billing_status") is False
    assert hook_registries == ([], [])


def test_before_the_snapshot_the_typical_requests_collaborators_are_built(
    hook_registries: tuple[list[Any], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    fresh_container: bootstrap.Container,
    aws: None,
) -> None:
    # Given an init for a snapshot
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    DEFAULT_PROVIDERS.pop("secrets", None)
    # When a function registers its hooks and Lambda runs the before-snapshot ones
    assert register_snapstart_hooks("billing_status") is True
    before, after = hook_registries
    assert (len(before), len(after)) == (1, 1)
    assert "billing_status" not in fresh_container.__dict__  # control: nothing built at registration
    run(before)
    # Then the service and its DynamoDB client are in the snapshot, and the secrets provider's client too
    assert "billing_status" in fresh_container.__dict__
    assert "dynamodb" in fresh_container.__dict__
    assert "secrets" in DEFAULT_PROVIDERS


def test_after_each_restore_secrets_are_read_again_and_random_differs_between_copies(
    hook_registries: tuple[list[Any], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    fresh_container: bootstrap.Container,
    aws: None,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    register_snapstart_hooks()
    before, after = hook_registries
    run(before)
    # Given a secret cached in the snapshot, and the snapshot's random state
    provider = DEFAULT_PROVIDERS["secrets"]
    provider.store["snapshot-copy"] = provider.store.get("snapshot-copy") or _cached("secret-cached-in-the-snapshot")
    snapshot_state = random.getstate()
    # When two execution environments restore from it, without and then with the after-restore hook
    random.setstate(snapshot_state)
    naive_first = random.random()
    random.setstate(snapshot_state)
    naive_second = random.random()
    random.setstate(snapshot_state)
    run(after)
    restored_first = random.random()
    random.setstate(snapshot_state)
    run(after)
    restored_second = random.random()
    # Then without the hook both copies draw the same numbers (control), with it they do not
    assert naive_first == naive_second
    assert restored_first != restored_second
    # And the cached secret is gone: the next read fetches the current value
    assert provider.store == {}


def _cached(value: str) -> Any:
    import datetime

    from aws_lambda_powertools.utilities.parameters.base import ExpirableValue

    return ExpirableValue(value, datetime.datetime.now() + datetime.timedelta(hours=1))


def test_every_function_registers_its_hooks_with_collaborators_the_container_has() -> None:
    # Given every function of the template that serves requests or events
    template = load_template()
    functions = resources_of_type(template, "AWS::Serverless::Function")
    for logical_id, resource in functions.items():
        source = (ROOT / resource["Properties"]["CodeUri"] / "app.py").read_text()
        if logical_id in ("ProvisionerFunction", "UsageDriftFunction"):
            continue  # a deploy-time custom resource and a daily job: a snapshot saves them nothing worth a version
        # Then its module registers the hooks, naming only attributes the composition root builds
        assert "register_snapstart_hooks(" in source, logical_id
        call = source.split("register_snapstart_hooks(", 1)[1].split(")", 1)[0]
        for name in (n.strip().strip('"') for n in call.split(",") if n.strip()):
            assert isinstance(getattr(bootstrap.Container, name, None), bootstrap.lazy), (logical_id, name)


def test_the_template_publishes_versions_behind_an_alias_and_snapstart_is_a_parameter() -> None:
    template = load_template()
    globals_ = template["Globals"]["Function"]
    # Every function publishes a version behind "live" (what SAM's events invoke), SnapStart off by default
    assert globals_["AutoPublishAlias"] == "live"
    assert globals_["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    assert template["Parameters"]["SnapStart"]["Default"] == "Off"
    assert template["Conditions"]["UseSnapStart"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "On"]}
    # And the explicit stream mapping invokes the published version too (SnapStart restores only versions)
    [mapping] = resources_of_type(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == {"Ref": "PublisherFunction.Alias"}
