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
- ``celery_class_tasks``: Task classes registered on the app (``app.register_task``).
- ``celery_worker_pool``: ``"solo"`` (the default) or ``"threads"``; the in-process worker runs
  tasks in threads either way (one at a time for solo, unless ``concurrency`` says otherwise). For
  a prefork worker, start a real one with :func:`celeriac.testing.worker_process`.
- ``celery_enable_logging``: False keeps the worker quiet (the default); True prints its banner.

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


def _make_app(config: Mapping[str, Any], parameters: Mapping[str, Any], includes: Sequence[str],
              class_tasks: Sequence[Any] = ()) -> Celery:
    settings = {**DEFAULT_CONFIG, **config}
    app = Celery(parameters.get("main", "celeriac.tests"), **{k: v for k, v in parameters.items() if k != "main"})
    app.conf.update(settings)
    for module in includes:
        importlib.import_module(module)
    for task in class_tasks:
        app.register_task(task)
    return app


def _worker_options(pool: str, enable_logging: bool, parameters: Mapping[str, Any]) -> dict[str, Any]:
    if pool not in ("solo", "threads"):
        raise pytest.UsageError(f"celery_worker_pool {pool!r}: the in-process test worker runs 'solo' or "
                                "'threads'; for prefork start a real worker with celeriac.testing.worker_process")
    return {"quiet": not enable_logging, **parameters}


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


@pytest.fixture(scope="session")
def celery_class_tasks() -> Sequence[Any]:
    return ()


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    return "solo"


@pytest.fixture(scope="session")
def celery_enable_logging() -> bool:
    return False


@pytest.fixture
def celery_app(celery_config: dict[str, Any], celery_parameters: dict[str, Any],
               celery_includes: Sequence[str], celery_class_tasks: Sequence[Any]) -> Iterator[Celery]:
    app = _make_app(celery_config, celery_parameters, celery_includes, celery_class_tasks)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def celery_worker(celery_app: Celery, celery_worker_parameters: dict[str, Any], celery_worker_pool: str,
                  celery_enable_logging: bool) -> Iterator[Any]:
    options = _worker_options(celery_worker_pool, celery_enable_logging, celery_worker_parameters)
    with start_worker(celery_app, **options) as supervisor:
        yield supervisor


@pytest.fixture(scope="session")
def celery_session_app(celery_config: dict[str, Any], celery_parameters: dict[str, Any],
                       celery_includes: Sequence[str], celery_class_tasks: Sequence[Any]) -> Iterator[Celery]:
    app = _make_app(celery_config, celery_parameters, celery_includes, celery_class_tasks)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="session")
def celery_session_worker(celery_session_app: Celery, celery_worker_parameters: dict[str, Any],
                          celery_worker_pool: str, celery_enable_logging: bool) -> Iterator[Any]:
    options = _worker_options(celery_worker_pool, celery_enable_logging, celery_worker_parameters)
    with start_worker(celery_session_app, **options) as supervisor:
        yield supervisor
