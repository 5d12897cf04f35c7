"""`make build` ships bytecode Lambda actually uses.

`sam package`/`sam deploy` zip every file with the zip format's default time (1980-01-01), and Lambda's code
directories are read-only. A timestamp-based .pyc then never matches its source and Python recompiles the module on
every cold start; an unchecked-hash .pyc (what `make build` writes) is used as is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.template import ROOT


def build_recipe() -> list[str]:
    """The compileall arguments of the Makefile's `build` target."""
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^build:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "the Makefile has no build target"
    command = next(line for line in target.group(1).splitlines() if "compileall" in line)
    return command.split("-m compileall", 1)[1].split()[:-1]  # drop the build directory


def package_like_sam(source: Path, archive: Path) -> None:
    """Zip a directory the way SAM CLI's packager does (ZipInfo without a date: 1980-01-01)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zf.writestr(zipfile.ZipInfo(str(path.relative_to(source))), path.read_bytes())


def deployed_value(tmp_path: Path, compile_args: list[str]) -> str:
    """Build a module, compile it, package and extract it like a deploy, then edit the source in place without
    touching the bytecode: the value a fresh read-only interpreter sees tells whether it used the .pyc."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "shipped.py").write_text('VALUE = "from bytecode"\n')
    subprocess.run([sys.executable, "-m", "compileall", *compile_args, str(build)], check=True, capture_output=True)
    package_like_sam(build, tmp_path / "function.zip")
    task = tmp_path / "task"
    with zipfile.ZipFile(tmp_path / "function.zip") as zf:
        zf.extractall(task)
        infos = zf.infolist()
    # Same size, different content: a recompile shows up as a different value
    (task / "shipped.py").write_text('VALUE = "from source!"\n')
    # Extracted files carry the archive's times (zipfile.extractall does not restore them; Lambda's files do)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        stamp = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(task / info.filename, (stamp, stamp))
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-c",
            f"import sys; sys.path.insert(0, {str(task)!r}); import shipped; print(shipped.VALUE)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_make_build_compiles_with_unchecked_hashes() -> None:
    assert build_recipe()[build_recipe().index("--invalidation-mode") + 1] == "unchecked-hash"


def test_bytecode_from_make_build_survives_packaging(tmp_path: Path) -> None:
    # Given a module compiled the way `make build` compiles, packaged and extracted like a deploy
    # When a read-only fresh interpreter imports it / Then it runs the shipped bytecode, no recompilation
    assert deployed_value(tmp_path, build_recipe()) == "from bytecode"


@pytest.mark.parametrize("mode", ["timestamp", "checked-hash"])
def test_control_default_bytecode_is_ignored_after_packaging(tmp_path: Path, mode: str) -> None:
    # Control: timestamp bytecode (compileall's default) no longer matches after the zip resets file times, and
    # checked hashes re-read the source; either way every cold start compiles again
    assert deployed_value(tmp_path, ["-q", "--invalidation-mode", mode]) == "from source!"
