"""Fixtures for the customer-facing API: the functions' environment and their handlers wired to fakes.

A pytest plugin (tests/conftest.py): the unit API tests and the adapter tests that put one real adapter into the
same world share it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.events import FakeLambdaContext, http_api_event
from tests.unit.api.fakes import CANCEL_URL, CATALOG_JSON, RETURN_URL, SUCCESS_URL, FakeCatalogGateway, World
from tollgate import bootstrap
from tollgate.services.catalog import CatalogCache

API_ENV = {
    "PLAN_CATALOG": json.dumps(CATALOG_JSON),
    "CHECKOUT_SUCCESS_URL": SUCCESS_URL,
    "CHECKOUT_CANCEL_URL": CANCEL_URL,
    "PORTAL_RETURN_URL": RETURN_URL,
}


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, fresh_container: Any) -> Any:
    for name, value in API_ENV.items():
        monkeypatch.setenv(name, value)
    return fresh_container


@pytest.fixture
def world(api_env: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    """The real handlers and services, with every port replaced by an in-memory fake."""
    w = World()
    # Built from the world on every use, so a test may swap a fake between requests.
    monkeypatch.setattr(bootstrap.Container, "checkout", property(lambda c: w.checkout()))
    monkeypatch.setattr(bootstrap.Container, "portal", property(lambda c: w.portal()))
    monkeypatch.setattr(bootstrap.Container, "cancellations", property(lambda c: w.cancellations()))
    api_env.__dict__["plan_catalog"] = CatalogCache(api_env.settings.plan_catalog, FakeCatalogGateway)
    return w


Invoke = Callable[..., dict[str, Any]]


def _invoker(module: str) -> Invoke:
    import importlib

    app = importlib.import_module(module)

    def invoke(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return app.handler(http_api_event(method, path, **kwargs), FakeLambdaContext())  # type: ignore[no-any-return]

    return invoke


@pytest.fixture
def checkout_api(world: World) -> Invoke:
    return _invoker("functions.checkout.app")


@pytest.fixture
def portal_api(world: World) -> Invoke:
    return _invoker("functions.portal.app")
