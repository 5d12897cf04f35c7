"""Repository hygiene: no secret-looking literals anywhere, and handlers that never import boto3 or stripe.

Stripe keys (``sk_live_``/``sk_test_``/``rk_live_``/``rk_test_``) and webhook signing secrets (``whsec_``) must
only ever live in Secrets Manager. The scan covers every file git tracks or would track (untracked, not ignored)
and the built ``.aws-sam/`` artifacts when a build exists, since those are what ``sam deploy`` uploads.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.template.rules import secret_literals_in

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / ".aws-sam" / "build"
BANNED_IN_HANDLERS = ("boto3", "botocore", "stripe")


def repository_files(root: Path = ROOT) -> list[Path]:
    """Tracked files plus untracked ones git would pick up (so a literal is caught before it is committed)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    return [root / name for name in listed.decode().split("\0") if name]


def build_files(build_dir: Path = BUILD_DIR) -> list[Path]:
    return [p for p in build_dir.rglob("*") if p.is_file() and p.suffix != ".pyc"] if build_dir.is_dir() else []


def find_secret_literals(paths: Iterable[Path], root: Path = ROOT) -> list[str]:
    """``path: literal...`` for every secret-looking literal in the given files (binary files included)."""
    findings: list[str] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue  # deleted in the working tree but still in the index, or a dangling link
        for literal in secret_literals_in(data):
            findings.append(f"{path.relative_to(root) if path.is_relative_to(root) else path}: {literal}")
    return findings


def fake_key(prefix: str) -> str:
    # Concatenated at runtime: this file must not contain the literal it looks for.
    return prefix + "_" + "4eC39HqLyjWDarjtT1zdp7dc"


# ---------------------------------------------------------------- secrets


def test_no_secret_literals_in_the_repository() -> None:
    # Given every file git tracks or would track
    files = repository_files()
    assert len(files) > 20, "git ls-files returned too little to be the repository"
    # When they are scanned / Then nothing looks like a Stripe key or signing secret
    assert find_secret_literals(files) == []


def test_no_secret_literals_in_the_built_artifacts() -> None:
    # Given what `sam build` produced (the functions, the layer with its dependencies, the built template)
    files = build_files()
    if not files:
        pytest.skip("no .aws-sam/build yet: run `make sam-build` (make test builds before running pytest)")
    # Then the deployment package holds no key either
    assert find_secret_literals(files) == []


@pytest.mark.parametrize("prefix", ["sk_live", "sk_test", "rk_live", "rk_test", "whsec"])
def test_scanner_catches_a_planted_literal(tmp_path: Path, prefix: str) -> None:
    # Given a key planted in a config file among clean files
    (tmp_path / "clean.py").write_text('API_KEY_PREFIXES = ("sk_", "rk_")  # documentation only\n')
    planted = tmp_path / "settings.env"
    planted.write_text(f"STRIPE_KEY={fake_key(prefix)}\n")
    # When the scanner runs
    findings = find_secret_literals([tmp_path / "clean.py", planted], root=tmp_path)
    # Then it reports the planted file, and only a shortened prefix of the value
    assert findings == [f"settings.env: {fake_key(prefix)[:12]}..."]


def test_scanner_catches_a_literal_inside_a_binary_artifact(tmp_path: Path) -> None:
    # Given a key inside a zipped-looking binary blob (a built artifact, a wheel)
    blob = tmp_path / "layer.bin"
    blob.write_bytes(b"\x00\x01PK\x03\x04" + fake_key("whsec").encode() + b"\xff\xfe")
    assert find_secret_literals([blob], root=tmp_path) == [f"layer.bin: {fake_key('whsec')[:12]}..."]


def test_scanner_ignores_bare_prefixes_in_documentation(tmp_path: Path) -> None:
    # Given prose naming the prefixes (the README explains which keys go where) without key material
    doc = tmp_path / "README.md"
    doc.write_text("Use a restricted key (`rk_live_...`) in production; test keys start with `sk_test_`.\n")
    assert find_secret_literals([doc], root=tmp_path) == []


def test_repository_listing_includes_untracked_files(tmp_path: Path) -> None:
    # Given a fresh repository with one committed and one new, uncommitted file
    git = shutil.which("git")
    assert git
    subprocess.run([git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "committed.txt").write_text("ok\n")
    subprocess.run([git, "add", "committed.txt"], cwd=tmp_path, check=True)
    (tmp_path / "new.env").write_text(f"KEY={fake_key('sk_live')}\n")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "cache.txt").write_text("x\n")
    # When listed and scanned
    files = repository_files(tmp_path)
    # Then the uncommitted file is scanned and ignored build output is not listed
    assert {p.name for p in files} == {"committed.txt", "new.env", ".gitignore"}
    assert find_secret_literals(files, root=tmp_path) == [f"new.env: {fake_key('sk_live')[:12]}..."]


# ---------------------------------------------------------------- thin handlers


def handler_files() -> list[Path]:
    return sorted((ROOT / "functions").glob("*/app.py"))


def imported_modules(source: str) -> Iterator[str]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_handlers_import_neither_boto3_nor_stripe() -> None:
    # Given every handler module
    files = handler_files()
    assert len(files) == 8
    # Then none of them imports an AWS or Stripe SDK (clients live in the layer's adapters)
    offenders = {
        str(path.relative_to(ROOT)): module
        for path in files
        for module in imported_modules(path.read_text())
        if module.split(".")[0] in BANNED_IN_HANDLERS
    }
    assert offenders == {}


def run_ruff(project: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--select",
            "TID251",
            "--output-format",
            "concise",
            *paths,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_lint_rule_catches_a_handler_importing_sdks(tmp_path: Path) -> None:
    # Given a copy of the project's lint configuration, a fat handler and a layer adapter
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    handler = tmp_path / "functions" / "fat" / "app.py"
    handler.parent.mkdir(parents=True)
    handler.write_text(
        "import boto3\nimport stripe\nfrom botocore.config import Config\n\n"
        "TABLE = boto3.resource('dynamodb')\nCLIENT = stripe.StripeClient('key')\nCONFIG = Config()\n"
    )
    adapter = tmp_path / "layers" / "common" / "tollgate" / "adapters" / "fine.py"
    adapter.parent.mkdir(parents=True)
    adapter.write_text("import boto3\nimport stripe\n\nCLIENTS = (boto3, stripe)\n")
    # When ruff checks both with the banned-api rule
    result = run_ruff(tmp_path, "functions", "layers")
    # Then the handler's three imports are reported and the adapter's are allowed
    reported = [line for line in result.stdout.splitlines() if "TID251" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(reported) == 3, result.stdout
    assert all(line.startswith("functions/fat/app.py") for line in reported), reported
    assert {name for name in BANNED_IN_HANDLERS if any(f"`{name}`" in line for line in reported)} == {
        "boto3",
        "stripe",
        "botocore",
    }


def test_real_handlers_pass_the_lint_rule() -> None:
    result = run_ruff(ROOT, "functions")
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the CI entry point


def make_target(name: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines) of a Makefile target."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(name)}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.MULTILINE)
    assert match, f"the Makefile has no {name} target"
    return match.group(1).split(), [line.strip() for line in match.group(2).splitlines()]


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script
    assert "set -euo pipefail" in script


def test_make_test_runs_every_check_and_no_benchmark() -> None:
    prerequisites, recipe = make_target("test")
    assert {"lint", "typecheck", "template-checks", "sam-build"} <= set(prerequisites)
    assert "bench" not in prerequisites
    assert any("pytest" in line for line in recipe)
    # The commands as make expands them (a dry run: nothing is executed)
    expanded = subprocess.run(
        ["make", "--dry-run", "template-checks", "lint"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "sam validate --lint" in expanded
    assert "cfn-lint template.yaml" in expanded
    assert "checkov" in expanded
    assert "--skip-download" in expanded
    assert "ruff format --check" in expanded
    assert "ruff check" in expanded
