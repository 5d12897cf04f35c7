"""The layer package and every handler import cleanly in a fresh interpreter set up like Lambda's, and importing
them builds no AWS client (clients are created lazily by the composition root, never at import time).

Each check runs in a child process with only the standard library, the layer and the function directory on
``sys.path`` (``python -I -S``), the way Lambda imports ``/var/task/app.py`` with ``/opt/python`` from the layer.
Third-party packages come from the environment's site-packages here, because the built layer holds arm64 wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from bench.coldstart_bench import foreign_native_packages
from tests.support.template import ROOT, load_template

LAYER = ROOT / "layers" / "common"
BUILD = ROOT / ".aws-sam" / "build"
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").is_file())

PROBE = textwrap.dedent(
    """
    import importlib, json, os, pkgutil, sys
    import botocore.session

    built = []
    original = botocore.session.Session.create_client

    def counting(self, service_name, *args, **kwargs):
        built.append(service_name)
        return original(self, service_name, *args, **kwargs)

    botocore.session.Session.create_client = counting

    mode = sys.argv[1]
    if mode in ("layer", "built"):
        import tollgate
        names = [m.name for m in pkgutil.walk_packages(tollgate.__path__, "tollgate.")]
        for name in names:
            importlib.import_module(name)
        loaded = names
        if mode == "built":
            app = importlib.import_module("app")
            assert callable(app.handler), "app.handler is not callable"
            loaded.append(app.__file__)
    elif mode == "handler":
        app = importlib.import_module("app")
        assert callable(app.handler), "app.handler is not callable"
        loaded = [app.__file__]
    else:
        # The control: a module that builds its client at import time, as naive handlers do
        import boto3
        TABLE = boto3.client("dynamodb")
        loaded = []
    import tollgate.bootstrap as bootstrap
    print(json.dumps({
        "clients_built": built,
        "container_built": bootstrap._container is not None,
        "loaded": loaded,
        "tollgate_from": os.path.dirname(sys.modules["tollgate"].__file__),
    }), flush=True)
    os._exit(0)
    """
)


def lambda_like_environment(function: str, task_root: Path) -> dict[str, str]:
    """What Lambda sets (task root, function name, execution env, region) plus the template's Globals."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": f"tollgate-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "tollgate",
        "POWERTOOLS_METRICS_NAMESPACE": "Tollgate",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "TABLE_NAME": "tollgate-test",
        "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tollgate/stripe",
    }


def run_probe(
    mode: str, function: str, path: list[str] | None = None, task_root: Path | None = None
) -> dict[str, object]:
    task_root = task_root or ROOT / "functions" / function
    # Lambda's order: the function code, then the layer, then the runtime's packages
    path = path or [str(task_root), str(LAYER), str(SITE_PACKAGES)]
    code = f"import sys; sys.path[:0] = {path!r}\n" + PROBE
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code, mode],
        env=lambda_like_environment(function, task_root),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        # The layer's logger reports uncaught exceptions on stdout (log_uncaught_exceptions), others go to stderr
        raise ProbeFailed((result.stdout + result.stderr)[-3000:])
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


class ProbeFailed(RuntimeError):
    pass


def test_every_layer_module_imports_without_building_clients() -> None:
    # Given a fresh Lambda-like interpreter / When every module of the layer package is imported
    report = run_probe("layer", FUNCTIONS[0])
    # Then all of them import, from the layer directory, and no AWS client or container was built
    assert report["tollgate_from"] == str(LAYER / "tollgate")
    assert "tollgate.bootstrap" in report["loaded"]  # type: ignore[operator]
    assert "tollgate.adapters.stripe_client" in report["loaded"]  # type: ignore[operator]
    assert report["clients_built"] == []
    assert report["container_built"] is False


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_module_imports_without_building_clients(function: str) -> None:
    # Given a fresh Lambda-like interpreter with the function's directory as the task root
    # When Lambda's init imports app.py
    report = run_probe("handler", function)
    # Then it imports, and its init builds no AWS client (cold start stays lean; clients come on first use)
    assert report["loaded"] == [str(ROOT / "functions" / function / "app.py")]
    assert report["clients_built"] == []
    assert report["container_built"] is False


def test_control_the_probe_sees_a_client_built_at_import() -> None:
    # Control: the same probe reports a naive module that creates its client at import time
    report = run_probe("naive", FUNCTIONS[0])
    assert report["clients_built"] == ["dynamodb"]


# ---------------------------------------------------------------- the built artifacts


def built_function_dirs() -> dict[str, Path]:
    template = load_template()
    return {
        name: BUILD / name
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="module")
def native_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's builds of the layer's native packages when the layer holds arm64 ones (same pinned versions)."""
    if not (BUILD / "CommonLayer" / "python").is_dir():
        pytest.skip("no .aws-sam/build yet: run `make sam-build` (make test builds before running pytest)")
    overlay = tmp_path_factory.mktemp("native")
    for package in foreign_native_packages(BUILD / "CommonLayer" / "python"):
        (overlay / package).symlink_to(SITE_PACKAGES / package, target_is_directory=True)
    return overlay


@pytest.mark.parametrize("function", sorted(built_function_dirs()))
def test_built_function_imports_with_only_the_layers_dependencies(function: str, native_overlay: Path) -> None:
    # Given the function and layer exactly as `sam build` produced them, and no other site-packages
    task_root = built_function_dirs()[function]
    path = [str(task_root), str(native_overlay), str(BUILD / "CommonLayer" / "python")]
    # When every layer module and the handler are imported as Lambda would
    report = run_probe("built", function, path, task_root)
    # Then everything resolves from the build (a dependency missing from layers/common/requirements.txt fails here)
    assert report["tollgate_from"] == str(BUILD / "CommonLayer" / "python" / "tollgate")
    assert report["loaded"][-1] == str(task_root / "app.py")  # type: ignore[index]
    assert report["clients_built"] == []


def test_control_a_dependency_missing_from_the_layer_is_caught(native_overlay: Path, tmp_path: Path) -> None:
    # Control: a handler importing a package the test environment has but the layer does not ship (pyjwt)
    (tmp_path / "app.py").write_text("import jwt\n\ndef handler(event, context):\n    return jwt.__name__\n")
    path = [str(tmp_path), str(native_overlay), str(BUILD / "CommonLayer" / "python")]
    with pytest.raises(ProbeFailed, match="No module named 'jwt'"):
        run_probe("built", "control", path, tmp_path)
