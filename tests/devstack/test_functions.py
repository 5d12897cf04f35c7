"""Function workers behave like Lambda execution environments: cold start once, warm reuse, context with a
deadline, isolation from the parent's environment, and a timed-out environment is discarded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.functions import FunctionHost, FunctionSpec
from devstack.http_api import FunctionFailed

HANDLER = """
import os, sys, time

COLD = {"starts": 0}
COLD["starts"] += 1
PID = os.getpid()


def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("raise"):
        raise ValueError("bad input")
    print("a log line", flush=True)
    return {
        "pid": PID,
        "cold_starts_in_this_process": COLD["starts"],
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "memory": context.memory_limit_in_mb,
        "table": os.environ.get("TABLE_NAME"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "leaked": os.environ.get("DEVSTACK_TEST_LEAK"),
        "sys_path_has_devstack": any(p.rstrip("/").endswith("devstack") for p in sys.path),
        "echo": event,
    }
"""


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DEVSTACK_TEST_LEAK", "should-not-reach-the-function")
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="EchoFunction",
        name="tollgate-echo",
        handler="app.handler",
        code_dir=code,
        layer_dirs=(),
        timeout_seconds=2.0,
        memory_mb=256,
        environment={"TABLE_NAME": "local-table"},
    )
    function_host = FunctionHost({"EchoFunction": spec}, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    yield function_host
    function_host.stop()


def test_cold_start_then_warm_reuse_with_a_lambda_context(host: FunctionHost) -> None:
    # When the function is invoked twice
    first = host.invoke("EchoFunction", {"n": 1})
    second = host.invoke("EchoFunction", {"n": 2})
    # Then one environment served both (one cold start), with a context counting down from the timeout
    assert first["pid"] == second["pid"]
    assert host.pools["EchoFunction"].cold_starts == 1
    assert 0 < first["remaining_ms"] <= 2000
    assert first["function_name"] == "tollgate-echo"
    assert first["request_id"] != second["request_id"]
    assert str(first["memory"]) == "256"
    # And the environment holds the template's and the local values, nothing from the parent's shell
    assert first["table"] == "local-table"
    assert first["endpoint"] == "http://127.0.0.1:1"
    assert first["leaked"] is None
    assert first["sys_path_has_devstack"] is False
    assert second["echo"] == {"n": 2}


def test_a_timed_out_environment_is_discarded_and_the_next_call_cold_starts(host: FunctionHost) -> None:
    first = host.invoke("EchoFunction", {})
    # When an invocation outlives the function's timeout
    with pytest.raises(FunctionFailed, match="timed out"):
        host.invoke("EchoFunction", {"sleep": 5})
    # Then the next invocation runs in a new environment
    after = host.invoke("EchoFunction", {})
    assert after["pid"] != first["pid"]
    assert host.pools["EchoFunction"].cold_starts == 2


def test_control_the_same_slow_call_succeeds_within_the_timeout(host: FunctionHost) -> None:
    # The timeout, not the sleep itself, is what failed the previous test's call
    result = host.invoke("EchoFunction", {"sleep": 0.2})
    assert result["echo"] == {"sleep": 0.2}


def test_an_unhandled_error_fails_the_invocation_but_keeps_the_environment(host: FunctionHost) -> None:
    first = host.invoke("EchoFunction", {})
    with pytest.raises(FunctionFailed, match="ValueError: bad input"):
        host.invoke("EchoFunction", {"raise": True})
    assert host.invoke("EchoFunction", {})["pid"] == first["pid"]


def test_an_import_error_is_an_init_failure(tmp_path: Path) -> None:
    code = tmp_path / "broken"
    code.mkdir()
    (code / "app.py").write_text("import module_that_does_not_exist\n")
    spec = FunctionSpec("Broken", "broken", "app.handler", code, (), 2.0, 128, {})
    broken = FunctionHost({"Broken": spec}, {})
    try:
        with pytest.raises(FunctionFailed, match="init failed"):
            broken.invoke("Broken", {})
    finally:
        broken.stop()
