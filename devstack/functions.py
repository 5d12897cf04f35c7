"""Running the template's functions the way Lambda does: one process per execution environment.

``functions_from_template`` reads each ``AWS::Serverless::Function`` merged with ``Globals.Function`` (handler, code
and layer directories, timeout, memory, environment). ``FunctionPool`` keeps warm workers per function, starts a
new one (a cold start) when all are busy, kills a worker whose invocation outlives the function's timeout and
replaces it on the next call, just as Lambda discards a timed-out environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devstack.function_logs import LogView
from devstack.http_api import FunctionFailed
from devstack.template import ROOT, Resolver, resources_of_type

log = logging.getLogger("devstack.functions")

RUNTIME_SCRIPT = Path(__file__).resolve().parent / "lambda_runtime.py"
INIT_TIMEOUT_SECONDS = 60.0  # generous: a cold import on a busy 2-core laptop can be slow


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    timeout_seconds: float
    memory_mb: int
    environment: Mapping[str, str]


def _merged(globals_fn: Mapping[str, Any], props: Mapping[str, Any], key: str, default: Any) -> Any:
    return props.get(key, globals_fn.get(key, default))


def functions_from_template(resolver: Resolver, root: Path = ROOT) -> dict[str, FunctionSpec]:
    """Each function's settings as Lambda would run them (SAM's Globals merged in, intrinsics resolved)."""
    template = resolver.template
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    specs: dict[str, FunctionSpec] = {}
    for lid, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        if not resolver.resource_enabled(lid):
            continue
        props = resource.get("Properties") or {}
        environment: dict[str, str] = {}
        for source in (globals_fn, props):
            variables = (source.get("Environment") or {}).get("Variables") or {}
            environment.update({k: str(v) for k, v in resolver.resolve(variables).items()})
        layer_dirs: list[Path] = []
        for layer in [*(globals_fn.get("Layers") or []), *(props.get("Layers") or [])]:
            # Local layers are the template's own LayerVersion resources; their ContentUri is the /opt/python.
            if isinstance(layer, dict) and "Ref" in layer:
                layer_props = template["Resources"][layer["Ref"]].get("Properties") or {}
                layer_dirs.append(root / str(layer_props["ContentUri"]))
        name = resolver.resolve(props.get("FunctionName")) or f"{resolver.stack_name}-{lid}"
        specs[lid] = FunctionSpec(
            logical_id=lid,
            name=str(name),
            handler=str(_merged(globals_fn, props, "Handler", "app.handler")),
            code_dir=root / str(_merged(globals_fn, props, "CodeUri", ".")),
            layer_dirs=tuple(layer_dirs),
            timeout_seconds=float(resolver.resolve(_merged(globals_fn, props, "Timeout", 3))),
            memory_mb=int(resolver.resolve(_merged(globals_fn, props, "MemorySize", 128))),
            environment=environment,
        )
    return specs


def lambda_environment(spec: FunctionSpec, local: Mapping[str, str]) -> dict[str, str]:
    """A Lambda-like environment: the template's variables, the runtime's reserved ones, then local overrides."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join(str(p) for p in (spec.code_dir, *spec.layer_dirs)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex}",
        **spec.environment,
    }
    env.update(local)
    return env


@dataclass
class _Worker:
    spec: FunctionSpec
    process: subprocess.Popen[str]
    view: LogView = field(default_factory=LogView)
    answers: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, spec: FunctionSpec, env: Mapping[str, str], view: LogView | None = None) -> _Worker:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and runtime script
            # -P: the runtime's own folder never lands on sys.path; the function sees only its code and layers.
            [sys.executable, "-P", str(RUNTIME_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=spec.code_dir,
            text=True,
            encoding="utf-8",
            bufsize=1,
            # Ctrl-C reaches the stack, which stops workers in order; a worker whose parent died sees EOF and exits.
            start_new_session=True,
        )
        worker = cls(spec, process, view or LogView())
        threading.Thread(target=worker._read_answers, daemon=True, name=f"{spec.name}-answers").start()
        threading.Thread(target=worker._forward_logs, daemon=True, name=f"{spec.name}-logs").start()
        return worker

    def _read_answers(self) -> None:
        stream: IO[str] | None = self.process.stdout
        assert stream is not None
        for line in stream:
            try:
                self.answers.put(json.loads(line))
            except json.JSONDecodeError:
                log.warning("[%s] unreadable runtime answer", self.spec.name)
        self.answers.put(None)  # the process is gone

    def _forward_logs(self) -> None:
        stream: IO[str] | None = self.process.stderr
        assert stream is not None
        function_log = logging.getLogger(f"devstack.fn.{self.spec.logical_id}")
        for line in stream:
            shown = self.view.render(line)
            if shown is not None:
                function_log.log(*shown)

    def wait_ready(self) -> None:
        answer = self._next(INIT_TIMEOUT_SECONDS)
        if answer is None or "init_error" in answer:
            self.kill()
            detail = (answer or {}).get("init_error", {}).get("errorMessage", "runtime exited")
            raise FunctionFailed(f"{self.spec.name}: init failed: {detail}")

    def _next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.answers.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError from None

    def invoke(self, event: Mapping[str, Any], timeout_seconds: float) -> Any:
        request_id = str(uuid.uuid4())
        deadline = time.time() + timeout_seconds
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(
                json.dumps({"event": event, "request_id": request_id, "deadline_ms": int(deadline * 1000)}) + "\n"
            )
            stdin.flush()
            answer = self._next(deadline - time.time())
        except (TimeoutError, BrokenPipeError):
            self.kill()
            raise FunctionFailed(f"{self.spec.name}: Task timed out after {timeout_seconds:.2f} seconds") from None
        if answer is None:
            self.kill()
            raise FunctionFailed(f"{self.spec.name}: Runtime exited without providing a reason")
        if "error" in answer:
            raise FunctionFailed(f"{self.spec.name}: {answer['error']['errorType']}: {answer['error']['errorMessage']}")
        return answer.get("result")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("[%s] worker did not exit", self.spec.name)


class FunctionPool:
    """Execution environments of one function: warm ones are reused, up to ``max_concurrency`` at once."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        max_concurrency: int = 4,
        view: LogView | None = None,
    ) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self.view = view or LogView()
        self.max_concurrency = max_concurrency
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._cond = threading.Condition()
        self.cold_starts = 0
        self.invocations = 0

    def _acquire(self) -> _Worker | None:
        with self._cond:
            while True:
                self._idle = [w for w in self._idle if w.alive]
                self._all = [w for w in self._all if w.alive]
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.max_concurrency:
                    self.cold_starts += 1
                    return None  # the caller starts one outside the lock
                self._cond.wait(timeout=1)

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if worker.alive:
                self._idle.append(worker)
            self._cond.notify()

    def invoke(self, event: Mapping[str, Any]) -> Any:
        worker = self._acquire()
        if worker is None:
            worker = _Worker.start(self.spec, self.environment, self.view)
            with self._cond:
                self._all.append(worker)
            try:
                worker.wait_ready()
            except FunctionFailed:
                self._release(worker)
                raise
        try:
            self.invocations += 1
            return worker.invoke(event, self.spec.timeout_seconds)
        finally:
            self._release(worker)

    def prewarm(self) -> None:
        """Start one environment ahead of the first request (``make dev`` does, so the first curl is fast)."""
        try:
            self._release(self._start_ready())
        except FunctionFailed as exc:
            log.error("%s", exc)

    def _start_ready(self) -> _Worker:
        with self._cond:
            self.cold_starts += 1
        worker = _Worker.start(self.spec, self.environment, self.view)
        with self._cond:
            self._all.append(worker)
        try:
            worker.wait_ready()
        except FunctionFailed:
            self._release(worker)
            raise
        return worker

    def stop(self) -> None:
        with self._cond:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            if worker.process.stdin:
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()
            worker.kill()


class FunctionHost:
    """All functions of the template; ``invoke(logical_id, event)`` is what the API emulator and poller call."""

    def __init__(
        self, specs: Mapping[str, FunctionSpec], local_environment: Mapping[str, str], view: LogView | None = None
    ) -> None:
        self.pools = {
            lid: FunctionPool(spec, lambda_environment(spec, local_environment), view=view)
            for lid, spec in specs.items()
        }

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        return self.pools[logical_id].invoke(event)

    def prewarm(self) -> None:
        threads = [threading.Thread(target=pool.prewarm, daemon=True) for pool in self.pools.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        for pool in self.pools.values():
            pool.stop()
