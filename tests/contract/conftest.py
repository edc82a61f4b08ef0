"""Fixtures of the contract suite: each test runs once per implementation.

``broker`` / ``backend`` are built through ``from_url`` exactly as an app builds them:
``memory://<unique name>``, ``sqlite:///<tmp>/x.db`` (an absolute path), the tests' own
redis-server (``redis_url`` from ``tests/conftest.py``, flushed per test), and the same Redis
engine reached through three Sentinels (``sentinel://...;sentinel://...`` with the master's name
in ``transport_options``, as ``broker_transport_options`` gives it), and a Redis Cluster of three
masters and three replicas (``rediscluster://seed,seed,...``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import backends, brokers
from celeriac.backends.base import ResultBackend
from celeriac.brokers.base import Broker

IMPLEMENTATIONS = ["memory", "sqlite", "redis", "sentinel", "cluster"]


def _url(kind: str, request: pytest.FixtureRequest, path: Path) -> str:
    if kind == "memory":
        return f"memory://contract-{uuid.uuid4().hex}"
    if kind == "sqlite":
        return f"sqlite:///{path}"
    if kind == "sentinel":
        return str(request.getfixturevalue("sentinel_url"))
    if kind == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture(params=IMPLEMENTATIONS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url_options(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """What ``from_url`` needs beside the URL (the Sentinel master's name)."""
    if kind == "sentinel":
        return {"transport_options": request.getfixturevalue("sentinel_setup").transport_options}
    return {}


@pytest.fixture
def broker_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(kind, request, tmp_path / "broker.db")


@pytest.fixture
def make_broker(broker_url: str, url_options: dict[str, Any]) -> Iterator[Callable[..., Broker]]:
    """Build brokers on the test's store (several objects = several connections); all are
    closed after the test."""
    made: list[Broker] = []

    def make(**options: Any) -> Broker:
        made.append(brokers.from_url(broker_url, **{**url_options, **options}))
        return made[-1]

    yield make
    for broker in made:
        flush = getattr(broker, "flush", None)
        if flush is not None:
            flush()  # memory stores outlive their brokers: leave nothing behind
        broker.close()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()


@pytest.fixture
def backend_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(kind, request, tmp_path / "results.db")


@pytest.fixture
def make_backend(backend_url: str, url_options: dict[str, Any]) -> Iterator[Callable[..., ResultBackend]]:
    made: list[ResultBackend] = []

    def make(**options: Any) -> ResultBackend:
        made.append(backends.from_url(backend_url, **{**url_options, **options}))
        return made[-1]

    yield make
    for backend in made:
        flush = getattr(backend, "flush", None)
        if flush is not None:
            flush()
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., ResultBackend]) -> ResultBackend:
    return make_backend()
