"""The inside of one local Lambda execution environment (run as a script in its own process, stdlib only).

Like the Python runtime it imports the handler once (the cold start), then serves invocations one at a time with
a fresh context whose ``get_remaining_time_in_millis`` counts down to the invocation's deadline. Invocations
arrive as JSON lines on stdin; answers leave as JSON lines on a private copy of stdout, while the function's own
stdout and stderr (its logs) go to stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # everything the function prints is log output
    sys.stdout = sys.stderr

    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:
        answers.write(json.dumps({"init_error": _error(exc)}) + "\n")
        return
    answers.write(json.dumps({"ready": True}) + "\n")

    for line in sys.stdin:
        invocation = json.loads(line)
        context = LambdaContext(invocation["request_id"], invocation["deadline_ms"])
        try:
            result = handler(invocation["event"], context)
            answer = {"result": result}
        except Exception as exc:
            traceback.print_exc()
            answer = {"error": _error(exc)}
        try:
            answers.write(json.dumps(answer) + "\n")
        except (TypeError, ValueError) as exc:
            answers.write(json.dumps({"error": _error(exc)}) + "\n")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # the environment is being shut down
        main()
