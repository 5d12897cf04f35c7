"""One moto server process for the devstack tests (starting one costs seconds on a busy machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.aws_resources import MotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = MotoServer()
    yield server.start()
    server.stop()
