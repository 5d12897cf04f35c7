"""The import graph flows one way (docs/architecture.md): the import-linter contracts in pyproject.toml hold for the
tree, and each fails on a planted violation (an upward import, a cycle, a vendor SDK outside the adapters, a handler
reaching an adapter), as does ruff's banned-api rule for the SDKs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{project / 'layers' / 'common'}{os.pathsep}{project}"}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy_of_tree(tmp_path: Path) -> Path:
    """The package, the handlers and the contracts, copied so a test can plant a violation."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "layers" / "common" / "tollgate", tmp_path / "layers" / "common" / "tollgate")
    shutil.copytree(ROOT / "functions", tmp_path / "functions")
    shutil.copytree(ROOT / "devstack", tmp_path / "devstack", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(project: Path, module: str, line: str) -> None:
    path = project / module
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the domain reaching up into a service
        ("layers/common/tollgate/domain/access.py", "import tollgate.services.checkout", "layers"),
        # services and adapters are independent of each other
        ("layers/common/tollgate/services/portal.py", "import tollgate.adapters.aws", "layers"),
        # a cycle inside one layer: checkout already imports customers
        ("layers/common/tollgate/services/customers.py", "import tollgate.services.checkout", "no import cycle"),
        # a vendor SDK outside the adapters
        ("layers/common/tollgate/services/portal.py", "import stripe", "only adapters"),
        ("layers/common/tollgate/domain/usage.py", "import botocore.exceptions", "only adapters"),
        # a handler skipping the composition root
        ("functions/checkout/app.py", "import tollgate.adapters.dynamodb.rate_limiter", "handlers call"),
        # the emulator's store reaching up into a resource API, and a resource area into a higher one
        ("devstack/stripe_emulator/store.py", "import devstack.stripe_emulator.api", "emulator's layers"),
        (
            "devstack/stripe_emulator/domain/catalog.py",
            "import devstack.stripe_emulator.domain.dunning",
            "resource areas",
        ),
    ],
)
def test_control_a_planted_violation_breaks_its_contract(
    copy_of_tree: Path, module: str, line: str, broken: str
) -> None:
    # Given the tree with one planted import
    plant(copy_of_tree, module, line)
    # When the contracts are checked
    result = lint_imports(copy_of_tree)
    # Then the check fails, naming the contract that broke
    assert result.returncode != 0
    assert any(broken in row and "BROKEN" in row for row in result.stdout.splitlines()), result.stdout[-3000:]


@pytest.mark.parametrize("sdk", ["stripe", "boto3", "botocore.exceptions"])
@pytest.mark.parametrize(
    "module",
    [
        "layers/common/tollgate/services/checkout.py",
        "layers/common/tollgate/domain/access.py",
        "layers/common/tollgate/http/responses.py",
        "functions/webhook/app.py",
    ],
)
def test_control_ruff_refuses_a_vendor_sdk_outside_the_adapters(module: str, sdk: str) -> None:
    source = (ROOT / module).read_text() + f"\nimport {sdk}  # noqa: F401\n"
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "--select", "TID251", "--stdin-filename", module, "-"],
        cwd=ROOT,
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "TID251" in result.stdout


def test_ruff_lets_adapters_import_the_sdks() -> None:
    module = "layers/common/tollgate/adapters/stripe_api/reader.py"
    source = (ROOT / module).read_text() + "\nimport boto3  # noqa: F401\n"
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "--select", "TID251", "--stdin-filename", module, "-"],
        cwd=ROOT,
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
