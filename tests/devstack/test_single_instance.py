"""``make dev`` twice in one checkout (issue 15, point 6): the second refuses, names the first (pid, ports) and leaves
its state alone; a lock left by a killed stack is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.instance_lock import AlreadyRunning, InstanceLock

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"api": 3000, "stripe": 12111, "aws": 5055}

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from devstack.instance_lock import InstanceLock
    lock = InstanceLock.acquire(Path(sys.argv[1]), {"api": 3000, "stripe": 12111, "aws": 5055})
    print("held", flush=True)
    time.sleep(120)
    """
)


def hold_lock(lock_file: Path) -> subprocess.Popen[str]:
    """Another process (a first `make dev`) holding the checkout's lock."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_file)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = hold_lock(tmp_path / "devstack.lock")
    yield process
    process.kill()
    process.wait(10)


def test_a_second_acquire_names_the_running_holder(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    # When a second stack tries to take the lock another live process holds
    with pytest.raises(AlreadyRunning) as refused:
        InstanceLock.acquire(tmp_path / "devstack.lock", {"api": 3001, "stripe": 12112, "aws": 5056})
    # Then it is refused, naming the holder's pid and ports, and the holder's facts are intact
    message = str(refused.value)
    assert f"pid {holder.pid}" in message
    assert "api port 3000" in message
    assert "stripe port 12111" in message
    assert "aws port 5055" in message
    assert json.loads((tmp_path / "devstack.lock").read_text())["pid"] == holder.pid


def test_a_lock_left_by_a_killed_stack_is_taken_over(tmp_path: Path) -> None:
    # Given a stack killed without cleaning up (its lock file still names it)
    lock_file = tmp_path / "devstack.lock"
    dead = hold_lock(lock_file)
    dead.send_signal(signal.SIGKILL)
    dead.wait(10)
    assert json.loads(lock_file.read_text())["pid"] == dead.pid
    # When a new stack starts, Then it takes the lock over and the file names it
    lock = InstanceLock.acquire(lock_file, PORTS)
    try:
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    # And once released, the next one gets it too
    InstanceLock.acquire(lock_file, PORTS).release()


def test_the_cli_refuses_before_starting_anything(
    tmp_path: Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import devstack.__main__ as cli

    # Given the first stack's endpoints file and lock in the state directory
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text('{"api_url": "http://127.0.0.1:3000/dev"}')
    before = endpoints.stat().st_mtime_ns
    monkeypatch.setattr(cli, "ENDPOINTS_FILE", endpoints)
    monkeypatch.setattr(cli, "LOCK_FILE", tmp_path / "devstack.lock")
    started: list[object] = []
    monkeypatch.setattr(cli, "LocalStack", started.append)
    # When `python -m devstack` runs a second time
    code = cli.main(["--api-port", "0", "--stripe-port", "0", "--aws-port", "0"])
    # Then it exits 1 without building a stack, and the first one's endpoints file is untouched
    assert code == 1
    assert started == []
    assert endpoints.read_text() == '{"api_url": "http://127.0.0.1:3000/dev"}'
    assert endpoints.stat().st_mtime_ns == before


def test_control_without_a_running_stack_the_cli_builds_one_and_releases_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devstack.__main__ as cli

    class Interrupted:
        """A stack whose start is interrupted at once (Ctrl-C): enough to see that the CLI got past the lock."""

        def __init__(self, config: object) -> None:
            built.append(config)

        def start(self) -> None:
            raise KeyboardInterrupt

    built: list[object] = []
    monkeypatch.setattr(cli, "ENDPOINTS_FILE", tmp_path / "endpoints.json")
    monkeypatch.setattr(cli, "LOCK_FILE", tmp_path / "devstack.lock")
    monkeypatch.setattr(cli, "LocalStack", Interrupted)
    assert cli.main(["--api-port", "0", "--stripe-port", "0", "--aws-port", "0"]) == 130
    assert len(built) == 1
    InstanceLock.acquire(tmp_path / "devstack.lock", PORTS).release()  # released on the way out


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the first stack exited"
        assert time.monotonic() < deadline, "the first stack did not come up"
        time.sleep(0.2)


@pytest.mark.e2e
def test_make_dev_twice_in_one_state_directory(tmp_path: Path) -> None:
    environment = {**os.environ, "DEVSTACK_STATE_DIR": str(tmp_path)}
    for name in ("DEVSTACK_PARAMS", "DEVSTACK_PARAMS_FILE"):
        environment.pop(name, None)
    command = [sys.executable, "-m", "devstack", "--api-port", "0", "--stripe-port", "0", "--aws-port", "0"]
    # Given a running local stack
    # (started with SIGINT ignored, as a script's background job or a test worker's child is: Ctrl-C must still stop it)
    first = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - no threads in between
    )
    try:
        endpoints = tmp_path / "endpoints.json"
        wait_for(endpoints, first, 120)
        facts = endpoints.read_bytes()
        api_port = json.loads(facts)["api_url"].split(":")[2].split("/")[0]
        # When a second one starts in the same state directory
        second = subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
        )
        # Then it refuses with a message naming the first's pid and its bound ports, and leaves its state alone
        assert second.returncode == 1, second.stderr[-2000:]
        assert f"pid {first.pid}" in second.stderr
        assert f"api port {api_port}" in second.stderr
        assert "local stack is up" not in second.stdout
        assert endpoints.read_bytes() == facts
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        try:
            first.wait(120)
        except subprocess.TimeoutExpired:
            first.kill()
    # And the first, stopping, removed its own endpoints file
    assert not (tmp_path / "endpoints.json").exists()
