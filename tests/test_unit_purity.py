"""tests/unit is pure: its conftest refuses a unit test that starts moto or opens a socket (control: the same
tests outside tests/unit pass). Moto-backed, socket and subprocess tests live in tests/integration."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "tests" / "unit"

PLANTED = """
import socket

import pytest


@pytest.fixture
def aws():
    yield


def test_uses_moto(aws):
    pass


def test_opens_a_socket():
    socket.create_connection(("127.0.0.1", 9), timeout=0.1)
"""


def run_planted(tmp_path: Path, guarded: bool) -> str:
    suite = tmp_path / "suite"
    suite.mkdir()
    if guarded:
        shutil.copy(UNIT / "conftest.py", suite / "conftest.py")
    (suite / "test_planted.py").write_text(PLANTED)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout


def test_a_unit_test_may_not_start_moto_or_open_a_socket(tmp_path: Path) -> None:
    out = run_planted(tmp_path, guarded=True)
    assert "move it to tests/integration" in out
    assert "SocketBlockedError" in out
    assert "2 errors" in out or ("1 failed" in out and "1 error" in out)


def test_control_without_the_guard_the_same_tests_run(tmp_path: Path) -> None:
    out = run_planted(tmp_path, guarded=False)
    assert "SocketBlockedError" not in out
    assert "move it to tests/integration" not in out


def test_no_unit_test_imports_moto() -> None:
    offenders = []
    for path in UNIT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "moto" or n.startswith("moto.") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
