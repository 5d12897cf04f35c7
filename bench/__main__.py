"""``python -m bench``: run every ``bench/*_bench.py`` module and print its table.

Each bench module defines ``TITLE: str`` and ``run(options: BenchOptions) -> str`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import bench
from bench.harness import BenchOptions


def bench_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.endswith("_bench"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("benches", nargs="*", help=f"which to run (default: all of {', '.join(bench_modules())})")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", default=None, help="substring filter on scenario names (the floor always runs)")
    args = parser.parse_args(argv)
    options = BenchOptions(rounds=args.rounds, warmups=args.warmups, seed=args.seed, only=args.only)
    names = args.benches or bench_modules()
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n## {module.TITLE}\n", flush=True)
        started = time.monotonic()
        print(module.run(options))
        print(f"\n({name}: {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
