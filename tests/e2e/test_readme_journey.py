"""The README's curl journey, executed: the shell block of README.md's "Local development" section is read and run
against the local stack (variables, ``$(python -m devstack token)``, each curl with its method, headers and body;
the "press Pay" step on the emulator's hosted page), so the documented journey cannot silently rot.

Only host and port differ from the README (the test stack runs on free ports); the stage path must match.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import shlex
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

import devstack.__main__ as devstack_cli
from devstack.function_logs import LogView
from devstack.stack import LocalStack
from tests.e2e.test_checkout_journey import TIMEOUT, pay_on_hosted_page

pytestmark = pytest.mark.e2e

#: "Fits in a screen": a 50-row terminal 160 columns wide, long lines wrapping.
SCREEN_ROWS, SCREEN_COLUMNS = 50, 160

README = Path(__file__).resolve().parents[2] / "README.md"
ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)=(?P<value>\$\([^)]*\)|\S+)\s*(#.*)?$")
SUBSTITUTION = re.compile(r"^\$\((?P<command>.+)\)$")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def readme_journey() -> list[str]:
    """The logical lines (continuations joined) of the first shell block in README.md's Local development section."""
    text = README.read_text()
    section = text.split("\n## Local development\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("\n```\n", 1)[1].split("\n```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def expand(word: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in env, f"README uses ${name} before setting it"
        return env[name]

    return VARIABLE.sub(value, word)


def run_devstack(argv: list[str], endpoints_file: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``python -m devstack ...`` in-process, reading this stack's endpoints file instead of .devstack/ (which a
    developer's ``make dev`` may own)."""
    monkeypatch.setattr(devstack_cli, "ENDPOINTS_FILE", endpoints_file)
    out = io.StringIO()
    with redirect_stdout(out):
        assert devstack_cli.main(argv) == 0
    return out.getvalue().strip()


def substitute(command: str, endpoints_file: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    words = shlex.split(command)
    assert words[0].endswith("python"), f"unsupported command: {command}"
    assert words[1:3] == ["-m", "devstack"], f"unsupported command: {command}"
    return run_devstack(words[3:], endpoints_file, monkeypatch)


def curl(words: list[str], env: dict[str, str]) -> requests.Response:
    """The curl options the README uses (-s, -X, -H, -d); anything else fails the test so the parser stays honest."""
    method, headers, data, url = "GET", {}, None, None
    args = iter(expand(w, env) for w in words[1:])
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, value = next(args).split(":", 1)
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = next(args)
            method = "POST" if method == "GET" else method
        elif not arg.startswith("-") and url is None:
            url = arg
        else:
            raise AssertionError(f"curl option the README test does not understand: {arg}")
    assert url is not None
    return requests.request(method, url, headers=headers, data=data, timeout=TIMEOUT)


class TerminalRecorder(logging.Handler):
    """What `make dev`'s terminal shows (its loggers, levels and format), and what the functions wrote (every
    line, as a make dev without the log view printed them), each under the README step running at the time."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(devstack_cli._ShortNames("%(asctime)s %(short_name)-12s %(message)s", datefmt="%H:%M:%S"))
        self.step = "start"
        self.shown: dict[str, list[str]] = {}
        self.shown_from_functions: dict[str, list[str]] = {}
        self.written: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        lines = self.format(record).splitlines()
        self.shown.setdefault(self.step, []).extend(lines)
        if record.name.startswith("devstack.fn"):
            self.shown_from_functions.setdefault(self.step, []).extend(lines)

    def wrote(self, line: str) -> None:
        self.written.setdefault(self.step, []).append(line.rstrip("\n"))


def screen_rows(lines: list[str]) -> int:
    return sum(max(1, math.ceil(len(line) / SCREEN_COLUMNS)) for line in lines)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[TerminalRecorder]:
    """make dev's logging (devstack.__main__._configure_logging, not verbose) on the shared stack's loggers."""
    recorder = TerminalRecorder()
    original_render = LogView.render

    def recording_render(view: LogView, line: str) -> tuple[int, str] | None:
        recorder.wrote(line)
        return original_render(view, line)

    monkeypatch.setattr(LogView, "render", recording_render)
    levels = {"devstack": logging.WARNING, "devstack.api": logging.INFO, "devstack.fn": logging.INFO}
    levels["devstack.sqs"] = logging.INFO
    before = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("devstack").addHandler(recorder)
    yield recorder
    logging.getLogger("devstack").removeHandler(recorder)
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_the_readme_curl_journey_works_against_the_local_stack(
    local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: TerminalRecorder
) -> None:
    # Given the stack's endpoints file, as make dev writes it, and the README's journey
    endpoints_file = tmp_path / "endpoints.json"
    local_stack.write_endpoints(endpoints_file)
    lines = readme_journey()
    env: dict[str, str] = {}
    responses: list[tuple[str, requests.Response]] = []
    paid_redirect: str | None = None

    # When every line runs in order
    for line in lines:
        terminal.step = line
        if line.startswith("#"):
            if "-m devstack token --user-id" in line:  # the documented per-user token command works too
                command = line.split(":", 1)[1].strip()
                other = substitute(command, endpoints_file, monkeypatch)
                other_status = requests.get(
                    f"{local_stack.api_url}/billing/subscription",
                    headers={"Authorization": f"Bearer {other}"},
                    timeout=TIMEOUT,
                )
                assert other_status.status_code == 200, other_status.text
                assert other_status.json()["status"] == "none"
            if "press Pay" in line:  # the browser step: pay on the page the last checkout returned
                [checkout] = [r for path, r in responses if path.endswith("/checkout/sessions")]
                paid_redirect = pay_on_hosted_page(checkout.json()["url"])
            continue
        assignment = ASSIGNMENT.match(line)
        if assignment:
            name, value = assignment["name"], assignment["value"]
            substitution = SUBSTITUTION.match(value)
            if substitution:
                env[name] = substitute(substitution["command"], endpoints_file, monkeypatch)
            elif name == "API":
                documented = urlsplit(value)
                assert documented.path == urlsplit(local_stack.api_url).path, "README's API stage differs"
                assert documented.port == 3000  # make dev's default API port
                env[name] = local_stack.api_url
            else:
                env[name] = expand(value, env)
            continue
        words = shlex.split(line, comments=True)
        assert words[0] == "curl", f"README line the test cannot run: {line}"
        response = curl(words, env)
        responses.append((urlsplit(response.request.url or "").path, response))

    # Then the journey is the documented one: plans, a checkout, payment on the page, the subscription
    paths = [(r.request.method, path.removeprefix(urlsplit(local_stack.api_url).path)) for path, r in responses]
    assert paths == [("GET", "/plans"), ("POST", "/checkout/sessions"), ("GET", "/billing/subscription")]
    plans, checkout, subscription = (r for _, r in responses)
    assert plans.status_code == 200, plans.text
    assert plans.json()["plans"]
    assert checkout.status_code == 200, checkout.text
    assert set(checkout.json()) == {"id", "url"}
    assert paid_redirect is not None
    assert checkout.json()["id"] in paid_redirect
    # And the subscription the webhook projected grants access (re-asked briefly in case a delivery was retried)
    deadline = time.monotonic() + 5
    body: dict[str, Any] = subscription.json()
    while not body.get("access", {}).get("allowed") and time.monotonic() < deadline:
        time.sleep(0.5)
        body = curl(shlex.split(lines_with("/billing/subscription", lines)[0], comments=True), env).json()
    assert subscription.status_code == 200, subscription.text
    assert body["access"]["allowed"] is True, json.dumps(body)
    assert body["plan"] == json.loads(checkout.request.body or "{}")["plan"]
    assert body["status"] in ("trialing", "active")

    # And make dev's terminal showed each step within one screen (the webhook deliveries that paying causes land in
    # the steps after it), and it showed fewer rows of the functions' output than they wrote (control: a make dev
    # that printed the functions' lines as written, metric objects included, as it did before, shows at least as many)
    time.sleep(1.0)  # the last deliveries' log lines
    shown = {step: screen_rows(rows) for step, rows in terminal.shown.items()}
    written = {step: screen_rows(rows) for step, rows in terminal.written.items()}
    print("\nmake dev terminal rows per README step (shown / written by the functions):")
    for step in dict.fromkeys([*terminal.shown, *terminal.written]):
        print(f"  {shown.get(step, 0):4d} / {written.get(step, 0):4d}  {step[:90]}")
    assert max(shown.values()) <= SCREEN_ROWS, terminal.shown
    from_functions = sum(screen_rows(rows) for rows in terminal.shown_from_functions.values())
    print(f"  function output: {from_functions} rows shown of {sum(written.values())} written")
    assert 0 < from_functions < sum(written.values())


def lines_with(fragment: str, lines: list[str]) -> list[str]:
    return [line for line in lines if fragment in line and line.startswith("curl")]
