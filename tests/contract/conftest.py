"""The contract tests run against the same local stack as the e2e tests (one per test session and worker)."""

from tests.e2e.conftest import local_stack

__all__ = ["local_stack"]
