"""Cold start: each function's module init, as Lambda runs it from the build, as a ratio to the floor F.

F is a fresh interpreter doing ``import boto3; boto3.client("dynamodb")``: the least a function that talks to
DynamoDB does at init. A function scenario imports ``app`` from ``.aws-sam/build/<Function>/`` with the built
layer's ``python/`` after it on ``sys.path`` (Lambda's ``/var/task`` then ``/opt/python``), in a Lambda-like
environment. The webhook function also runs from a copy of its build with every ``.pyc`` removed, which is what
Lambda does on every cold start when the deployment ships no bytecode (its directories are read-only).

On a machine that is not arm64 the layer's native extensions (pydantic_core, ...) cannot load; they are taken from
this environment's site-packages (same pinned versions) and everything else from the build.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import BenchOptions, Scenario, markdown_table, measure, summarise
from devstack.template import load_template

TITLE = "Cold start: module init per function, ratio to F = import boto3; boto3.client('dynamodb')"
ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
LAYER = "CommonLayer"
FLOOR = "F: import boto3; boto3.client('dynamodb')"
PYC_TAG = sys.implementation.cache_tag  # cpython-313
# Compiling everything from source costs ~3x F per sample; one function is enough to show what bytecode saves.
NO_PYC_FUNCTIONS = ("WebhookFunction",)


def lambda_environment(function: str, task_root: Path, variables: dict[str, str]) -> dict[str, str]:
    # Outside Lambda, X-Ray's import builds two extra botocore clients (~100 ms): these variables avoid that skew.
    return {
        "PATH": "/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": f"tollgate-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        **variables,
    }


def placeholder(name: str, value: Any, parameters: dict[str, Any]) -> str:
    """An environment value as deployed: literals kept, parameter references at their defaults."""
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
        return str(parameters[value["Ref"]].get("Default", ""))
    if isinstance(value, dict) and "Fn::If" in value:
        return placeholder(name, value["Fn::If"][1], parameters)  # the condition's true branch (IsProd: INFO)
    if name.endswith("_URL"):
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/bench-{name.lower()}"
    if name.endswith("_ARN"):
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-{name.lower()}"
    return f"bench-{name.lower().replace('_', '-')}"


def function_variables(template: dict[str, Any], function: str) -> dict[str, str]:
    parameters = template.get("Parameters", {})
    glob = (template.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables") or {}
    own = (template["Resources"][function]["Properties"].get("Environment") or {}).get("Variables") or {}
    return {name: placeholder(name, value, parameters) for name, value in {**glob, **own}.items()}


def elf_machine(path: Path) -> int:
    """The ELF header's e_machine field (62 = x86-64, 183 = aarch64)."""
    with path.open("rb") as binary:
        header = binary.read(20)
    return int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else -1


def foreign_native_packages(layer_python: Path) -> set[str]:
    """Top-level packages whose extension modules were built for another machine than this one."""
    host = elf_machine(Path(sys.executable).resolve())
    return {so.relative_to(layer_python).parts[0] for so in layer_python.rglob("*.so") if elf_machine(so) != host}


def pyc_coverage(directory: Path) -> tuple[int, int, int]:
    """(modules, modules with a .pyc for this Python, of which unchecked-hash) under ``directory``."""
    modules = with_pyc = unchecked = 0
    for source in directory.rglob("*.py"):
        if "__pycache__" in source.parts:
            continue
        modules += 1
        compiled = source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc"
        if compiled.is_file():
            with_pyc += 1
            flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
            unchecked += flags == 0b01  # hash-based, source not checked
    return modules, with_pyc, unchecked


@contextmanager
def prepared_paths(functions: list[str]) -> Iterator[tuple[Path, Path, Path]]:
    """(native overlay dir, stripped copy of the build, the build) for the duration of a run."""
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as scratch:
        scratch_path = Path(scratch)
        overlay = scratch_path / "native"
        overlay.mkdir()
        site = Path(sysconfig.get_paths()["platlib"])
        for package in sorted(foreign_native_packages(BUILD / LAYER / "python")):
            (overlay / package).symlink_to(site / package, target_is_directory=True)
        stripped = scratch_path / "no-pyc"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(BUILD / LAYER / "python", stripped / LAYER / "python", ignore=ignore)
        for function in functions:
            if function in NO_PYC_FUNCTIONS:
                shutil.copytree(BUILD / function, stripped / function, ignore=ignore)
        yield overlay, stripped, BUILD


def scenarios(template: dict[str, Any], functions: list[str], overlay: Path, stripped: Path) -> list[Scenario]:
    layer = BUILD / LAYER / "python"
    built_modules, built_pyc, built_unchecked = pyc_coverage(layer)
    layer_note = f"layer .pyc {built_pyc}/{built_modules} ({built_unchecked} unchecked-hash)"
    base_env = lambda_environment("floor", BUILD, {})
    result = [
        Scenario("interpreter only (python -I -S)", "pass", env=base_env, note="startup included in every row"),
        Scenario(FLOOR, 'import boto3\nboto3.client("dynamodb")', (str(overlay), str(layer)), base_env, "floor"),
    ]
    for function in functions:
        variables = function_variables(template, function)
        variants = [("as built", BUILD)] + ([("no .pyc", stripped)] if function in NO_PYC_FUNCTIONS else [])
        for label, root in variants:
            task_root = root / function
            modules, with_pyc, _ = pyc_coverage(task_root)
            note = layer_note if root is BUILD else "every module compiled at init"
            result.append(
                Scenario(
                    f"{function} ({label})",
                    "import app\nassert callable(app.handler)",
                    (str(task_root), str(overlay), str(root / LAYER / "python")),
                    lambda_environment(function, task_root, variables),
                    f"{note}; app .pyc {with_pyc}/{modules}",
                )
            )
    return result


def run(options: BenchOptions) -> str:
    if not (BUILD / LAYER / "python").is_dir():
        raise SystemExit("no .aws-sam/build: run `make build` (or `make bench`, which builds first)")
    template = load_template()
    functions = sorted(
        name for name, res in template["Resources"].items() if res.get("Type") == "AWS::Serverless::Function"
    )
    with prepared_paths(functions) as (overlay, stripped, _):
        chosen = scenarios(template, functions, overlay, stripped)
        if options.only:
            chosen = [s for s in chosen if options.only in s.name or s.name == FLOOR]
        samples = measure(chosen, options)
    rows = summarise(chosen, samples, FLOOR)
    foreign = sorted(foreign_native_packages(BUILD / LAYER / "python"))
    header = [
        f"Python {sys.version.split()[0]}, {options.rounds} rounds after {options.warmups} warm-ups, "
        f"fresh interpreter per sample, shuffled order, teardown excluded.",
    ]
    if foreign:
        header.append(f"Native extensions from this host (layer holds another platform's): {', '.join(foreign)}.")
    return "\n".join(header) + "\n\n" + markdown_table(rows)
