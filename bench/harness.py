"""Measuring on noisy shared machines (``../shared/guides/performance.md``).

Every sample is a fresh interpreter; every round runs all scenarios in a new random order; warm-up rounds are
discarded. Each sample records the child's CPU time (user + sys from ``os.wait4``, which barely moves with
co-tenant load) and its wall time, and ends with ``os._exit(0)`` so interpreter teardown (not part of Lambda's
init phase) is excluded. Figures are reported as ratios to a floor scenario measured in the same run.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# -I: ignore PYTHON* variables and user site; -S: no site-packages (only the paths a scenario lists, as in
# Lambda: task root, then layers); -B: write no .pyc (Lambda's /var/task and /opt are read-only).
ISOLATED_FLAGS = ("-I", "-S", "-B")


@dataclass(frozen=True)
class BenchOptions:
    rounds: int = 15
    warmups: int = 2
    seed: int | None = None
    only: str | None = None  # substring filter on scenario names


@dataclass(frozen=True)
class Scenario:
    name: str
    code: str
    sys_path: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Sample:
    cpu_ms: float
    wall_ms: float


class ScenarioFailed(RuntimeError):
    pass


def child_source(scenario: Scenario) -> str:
    return (
        "import sys\n"
        f"sys.path[:0] = {list(scenario.sys_path)!r}\n"
        f"{scenario.code}\n"
        "import os\n"
        "os._exit(0)\n"  # skip teardown: Lambda's init phase ends before it
    )


def run_once(scenario: Scenario, python: str = sys.executable) -> Sample:
    """One fresh interpreter running the scenario; CPU time from the kernel's accounting of that child."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(  # reaped below with os.wait4 to read its resource usage
            [python, *ISOLATED_FLAGS, "-c", child_source(scenario)],
            env=dict(scenario.env),
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise ScenarioFailed(f"{scenario.name} exited {process.returncode}:\n{tail}")
    return Sample(cpu_ms=(usage.ru_utime + usage.ru_stime) * 1000, wall_ms=wall * 1000)


def measure(scenarios: Sequence[Scenario], options: BenchOptions) -> dict[str, list[Sample]]:
    """Samples per scenario: warm-ups discarded, every round in a freshly shuffled order."""
    shuffle = random.Random(options.seed)
    samples: dict[str, list[Sample]] = {s.name: [] for s in scenarios}
    for round_number in range(options.warmups + options.rounds):
        order = list(scenarios)
        shuffle.shuffle(order)
        for scenario in order:
            sample = run_once(scenario)
            if round_number >= options.warmups:
                samples[scenario.name].append(sample)
        print(f"  round {round_number + 1}/{options.warmups + options.rounds}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return samples


@dataclass(frozen=True)
class Row:
    name: str
    cpu_median: float
    cpu_min: float
    wall_median: float
    cpu_ratio: float
    wall_ratio: float
    note: str


def summarise(scenarios: Sequence[Scenario], samples: Mapping[str, list[Sample]], floor: str) -> list[Row]:
    floor_cpu = statistics.median(s.cpu_ms for s in samples[floor])
    floor_wall = statistics.median(s.wall_ms for s in samples[floor])
    rows = []
    for scenario in scenarios:
        cpu = [s.cpu_ms for s in samples[scenario.name]]
        wall = [s.wall_ms for s in samples[scenario.name]]
        rows.append(
            Row(
                name=scenario.name,
                cpu_median=statistics.median(cpu),
                cpu_min=min(cpu),
                wall_median=statistics.median(wall),
                cpu_ratio=statistics.median(cpu) / floor_cpu,
                wall_ratio=statistics.median(wall) / floor_wall,
                note=scenario.note,
            )
        )
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| scenario | CPU ms median | CPU ms min | wall ms median | ÷ F (CPU) | ÷ F (wall) | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.name} | {r.cpu_median:.0f} | {r.cpu_min:.0f} | {r.wall_median:.0f} | {r.cpu_ratio:.2f} "
        f"| {r.wall_ratio:.2f} | {r.note} |"
        for r in rows
    ]
    return "\n".join(lines)
