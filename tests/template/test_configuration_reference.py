"""README.md's configuration reference and webhook event list stay in step with the template and the code:
an operator configures what the README lists, so a parameter, variable or event type missing there is a bug."""

from __future__ import annotations

import contextlib
import re
from typing import Any

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


def deploy_section() -> str:
    return README.split("## Deploy\n", 1)[1].split("\n## ", 1)[0]


MANUAL_STEPS = ("Dashboard", "Add destination", "copy its signing secret", "enabled_events")


def manual_steps(section: str) -> list[str]:
    """Phrases of a hand-made Stripe setup (Dashboard clicks, endpoints and secrets copied by hand)."""
    return [phrase for phrase in MANUAL_STEPS if phrase in section]


def test_the_deploy_section_is_sam_deploy_and_the_api_key_and_no_dashboard_step() -> None:
    # Given README's deploy section
    section = deploy_section()
    # Then it deploys and puts the key, and names where the subscribed event types come from
    assert "sam deploy" in section
    assert '{"api_key"' in section
    assert "`SNAPSHOT_HANDLERS`, `THIN_HANDLERS`" in section
    # And it asks for nothing by hand in the Stripe Dashboard
    assert manual_steps(section) == []


def test_control_the_old_manual_steps_would_be_caught() -> None:
    old = (
        "3. **Point Stripe at the webhook.** In the Dashboard (Developers → Webhooks → Add destination) or with the "
        "API, create an endpoint / event destination whose URL is the stack's `WebhookUrl` output, then copy its "
        "signing secret into `webhook_secrets` (step 2)."
    )
    assert manual_steps(old) == ["Dashboard", "Add destination", "copy its signing secret"]


def test_the_provisioned_endpoints_subscribe_to_exactly_the_handler_tables() -> None:
    # The deploy subscribes to what the code handles: a handler added to a table is in the next deploy's description.
    from tollgate.services import provisioning, webhook_handlers

    snapshot, thin = provisioning.endpoint_specs("https://api.example/webhooks/stripe", "2026-10-28.endive")
    assert set(snapshot.events) == set(webhook_handlers.SNAPSHOT_HANDLERS)
    assert set(thin.events) == set(webhook_handlers.THIN_HANDLERS)
