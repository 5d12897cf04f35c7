"""``make provision`` (``tollgate.commands.provision``) reads the functions' settings from the environment and runs the
same reconciler: ``--plan`` prints the diff and writes nothing, ``--apply`` applies it."""

from __future__ import annotations

import json

import pytest

from tests.integration.provisioning.conftest import CATALOG, World
from tollgate.commands import provision


def test_plan_prints_the_diff_without_writing_and_apply_applies_it(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the functions' settings in the environment
    for name, value in {
        "PLAN_CATALOG": json.dumps(CATALOG),
        "USAGE_METER_EVENT_NAMES": "api_tokens",
        "PORTAL_RETURN_URL": "https://app.example.test/billing",
        "WEBHOOK_URL": "https://api.example.test/dev/webhooks/stripe",
    }.items():
        monkeypatch.setenv(name, value)
    before = len(world.writes())
    # When the plan is asked for
    assert provision.main(["--plan"]) == 0
    printed = capsys.readouterr().out
    # Then it lists the creations and wrote nothing
    assert "create price team_monthly: missing" in printed
    assert printed.rstrip().splitlines()[-1].startswith("plan for tollgate-test: ")
    assert world.writes()[before:] == []
    # When it is applied, Then Stripe holds the plans, and a second plan is empty
    assert provision.main(["--apply"]) == 0
    assert world.writes()[before:]
    capsys.readouterr()
    assert provision.main(["--plan"]) == 0
    assert capsys.readouterr().out.strip() == "plan for tollgate-test: in step: no change"
