"""Unit tests are pure: in-memory fakes of the ports, no moto, no sockets (pytest-socket), no child processes.
Tests of adapters on moto, of the built artifacts and of the local stack live in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket

#: Fixtures that start moto (tests/conftest.py): asking for one means the test belongs in tests/integration.
MOTO_FIXTURES = frozenset({"aws", "billing_table"})


@pytest.fixture(autouse=True)
def _pure(request: pytest.FixtureRequest) -> Iterator[None]:
    wanted = MOTO_FIXTURES.intersection(request.fixturenames)
    if wanted:
        pytest.fail(f"a unit test may not use {sorted(wanted)}: move it to tests/integration", pytrace=False)
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()
