"""The cold-start harness measures what it claims: the child's own CPU time, failures surfaced, bytecode counted."""

from __future__ import annotations

import compileall
import sys
from pathlib import Path

import pytest

from bench.coldstart_bench import elf_machine, foreign_native_packages, pyc_coverage
from bench.harness import BenchOptions, Scenario, ScenarioFailed, measure, run_once, summarise


def test_cpu_time_is_the_childs_own() -> None:
    # Given a child that burns ~0.3 s of CPU and one that does nothing
    busy = Scenario("busy", "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass")
    idle = Scenario("idle", "pass")
    # When each runs once / Then the busy child's CPU time shows the work, the idle one's does not
    assert run_once(busy).cpu_ms >= 250
    assert run_once(idle).cpu_ms < 250


def test_a_failing_scenario_is_reported_with_its_error() -> None:
    with pytest.raises(ScenarioFailed, match="ModuleNotFoundError"):
        run_once(Scenario("broken", "import module_that_does_not_exist"))


def test_children_see_only_the_listed_paths(tmp_path: Path) -> None:
    # -I -S: the environment's site-packages are not importable unless a scenario lists them
    with pytest.raises(ScenarioFailed, match="No module named 'pytest'"):
        run_once(Scenario("isolated", "import pytest"))
    (tmp_path / "probe_module.py").write_text("VALUE = 1\n")
    run_once(Scenario("listed", "import probe_module", sys_path=(str(tmp_path),)))


def test_measure_discards_warmups_and_reports_ratios_to_the_floor() -> None:
    scenarios = [Scenario("floor", "pass"), Scenario("other", "import json")]
    samples = measure(scenarios, BenchOptions(rounds=2, warmups=1, seed=1))
    assert [len(v) for v in samples.values()] == [2, 2]
    rows = summarise(scenarios, samples, "floor")
    assert rows[0].cpu_ratio == 1.0


def test_pyc_coverage_counts_unchecked_hash_bytecode(tmp_path: Path) -> None:
    # Given two modules, one compiled the way `make build` compiles
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "b.py").write_text("B = 2\n")
    compileall.compile_file(
        str(tmp_path / "a.py"), quiet=1, invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    assert pyc_coverage(tmp_path) == (2, 1, 1)


def test_native_packages_for_another_machine_are_detected(tmp_path: Path) -> None:
    # Given a layer with an extension module for this machine and one whose ELF header names another machine
    host = elf_machine(Path(sys.executable).resolve())
    assert host > 0
    other = 183 if host != 183 else 62
    for package, machine in (("native_here", host), ("native_elsewhere", other)):
        (tmp_path / package).mkdir()
        header = b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little")
        (tmp_path / package / "_ext.so").write_bytes(header + bytes(64))
    assert foreign_native_packages(tmp_path) == {"native_elsewhere"}
