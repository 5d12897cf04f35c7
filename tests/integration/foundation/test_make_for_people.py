"""What a newcomer meets before any of the product runs: a readable stop without Python 3.13, and a deploy that
uses the SAM CLI `make` installed (not one that must already be on PATH)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_without_python_3_13_the_install_stops_with_how_to_get_it(tmp_path: Path) -> None:
    # Given a machine whose only "python3.13" is missing (a path that does not exist)
    missing = tmp_path / "no-python3.13"
    # When any target that installs runs
    result = make("python-check", f"BASE_PYTHON={missing}")
    # Then it stops before creating anything, naming the version and the ways to get it
    assert result.returncode != 0
    assert "tollgate needs Python 3.13" in result.stderr
    assert "pyenv install 3.13.0" in result.stderr
    assert "BASE_PYTHON=" in result.stderr


def test_control_with_python_3_13_the_check_passes() -> None:
    result = make("python-check")
    assert result.returncode == 0, result.stderr


def test_a_wrong_python_version_is_refused_too(tmp_path: Path) -> None:
    # A python that is not 3.13 (a stand-in script answering like Python 3.12)
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    assert make("python-check", f"BASE_PYTHON={fake}").returncode != 0


def test_make_deploy_runs_the_pinned_sam_cli_guided_by_default() -> None:
    # When the deploy target is planned (make -n: nothing runs)
    guided = make("-n", "deploy")
    configured = make("-n", "deploy", "ARGS=--config-env prod")
    # Then it builds, then deploys with .tools/sam/bin/sam: guided the first time, or with the given arguments
    assert guided.returncode == 0, guided.stderr
    assert guided.stdout.strip().splitlines()[-1] == ".tools/sam/bin/sam deploy --guided"
    assert "sam build" in guided.stdout
    assert configured.stdout.strip().splitlines()[-1] == ".tools/sam/bin/sam deploy --config-env prod"


def test_the_pinned_sam_cli_make_installed_answers_deploy() -> None:
    if not SAM.exists():
        pytest.skip("the SAM CLI is installed by `make tools` (make test installs it before pytest)")
    result = subprocess.run([str(SAM), "deploy", "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "--guided" in result.stdout
