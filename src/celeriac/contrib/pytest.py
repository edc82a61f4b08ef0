"""Celery's pytest fixtures, backed by :mod:`celeriac.testing`: enable them with
``pytest_plugins = ("celeriac.contrib.pytest",)`` in your top-level ``conftest.py``.

- ``celery_config``: settings for the test app (override it; default: the in-process ``memory://``
  broker, whose store also keeps the results).
- ``celery_parameters``: keyword arguments for ``Celery(...)``.
- ``celery_includes``: modules imported into the app before its worker starts (Celery's ``include``).
- ``celery_worker_parameters``: keyword arguments for :func:`celeriac.testing.start_worker`
  (``concurrency``, ``queues``, ``shutdown_timeout``, ...).
- ``celery_app``: an app made from the above for one test, set as the current app.
- ``celery_worker``: a threads-pool worker for ``celery_app`` running inside the test process for
  the test (the supervisor; tasks declared on the app in the test itself run too).
- ``celery_session_app`` / ``celery_session_worker``: the same, once per test session.

Names are Celery's so existing tests keep working with the import changed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from ..app import Celery
from ..testing import start_worker

DEFAULT_CONFIG: dict[str, Any] = {"broker_url": "memory://"}


def _make_app(config: Mapping[str, Any], parameters: Mapping[str, Any], includes: Sequence[str]) -> Celery:
    settings = {**DEFAULT_CONFIG, **config}
    app = Celery(parameters.get("main", "celeriac.tests"), **{k: v for k, v in parameters.items() if k != "main"})
    app.conf.update(settings)
    for module in includes:
        importlib.import_module(module)
    return app


@pytest.fixture(scope="session")
def celery_config() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="session")
def celery_parameters() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="session")
def celery_includes() -> Sequence[str]:
    return ()


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    return {}


@pytest.fixture
def celery_app(celery_config: dict[str, Any], celery_parameters: dict[str, Any],
               celery_includes: Sequence[str]) -> Iterator[Celery]:
    app = _make_app(celery_config, celery_parameters, celery_includes)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def celery_worker(celery_app: Celery, celery_worker_parameters: dict[str, Any]) -> Iterator[Any]:
    with start_worker(celery_app, **celery_worker_parameters) as supervisor:
        yield supervisor


@pytest.fixture(scope="session")
def celery_session_app(celery_config: dict[str, Any], celery_parameters: dict[str, Any],
                       celery_includes: Sequence[str]) -> Iterator[Celery]:
    app = _make_app(celery_config, celery_parameters, celery_includes)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="session")
def celery_session_worker(celery_session_app: Celery, celery_worker_parameters: dict[str, Any]) -> Iterator[Any]:
    with start_worker(celery_session_app, **celery_worker_parameters) as supervisor:
        yield supervisor
