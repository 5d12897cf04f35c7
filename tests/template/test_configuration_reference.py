"""README.md's configuration reference and webhook event list stay in step with the template and the code:
an operator configures what the README lists, so a parameter, variable or event type missing there is a bug."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest

from tests.support.template import ROOT, load_template
from tollgate.config import Settings
from tollgate.errors import ConfigurationError

README = (ROOT / "README.md").read_text()
DOCUMENTED = set(re.findall(r"`([A-Za-z0-9_.]+)`", README))


class RecordingEnvironment(dict[str, str]):
    """An empty environment that remembers every variable the configuration asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)


def variables_read_by_config() -> set[str]:
    environ = RecordingEnvironment()
    # An empty environment is invalid; only the names asked for matter here
    with contextlib.suppress(ConfigurationError):
        Settings.from_environment(environ)
    return environ.asked


def variables_set_by_template() -> set[str]:
    template = load_template()
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            names |= set((resource["Properties"].get("Environment") or {}).get("Variables") or {})
    return names


def test_every_template_parameter_is_documented() -> None:
    missing = set(load_template()["Parameters"]) - DOCUMENTED
    assert not missing, f"add these parameters to README.md's configuration reference: {sorted(missing)}"


def test_every_environment_variable_is_documented() -> None:
    asked = variables_read_by_config()
    assert {"TABLE_NAME", "STRIPE_SECRET_ARN"} <= asked  # the recorder saw the reads
    missing = (asked | variables_set_by_template()) - DOCUMENTED
    assert not missing, f"add these variables to README.md's configuration reference: {sorted(missing)}"


def test_control_an_undocumented_name_is_noticed() -> None:
    assert "SOME_NEW_SETTING" not in DOCUMENTED


def test_every_handled_stripe_event_type_is_in_the_subscription_list() -> None:
    handlers = pytest.importorskip("tollgate.services.webhook_handlers", reason="the webhook handlers have not landed")
    handled = set(handlers.SNAPSHOT_HANDLERS) | set(handlers.THIN_HANDLERS)
    missing = handled - DOCUMENTED
    assert not missing, f"add these event types to README.md's 'Point Stripe at the webhook': {sorted(missing)}"
