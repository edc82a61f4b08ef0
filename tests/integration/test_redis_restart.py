"""Redis restarts under a draining worker: every task still completes, and the worker stays up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celeriac.testing import wait_until
from conftest import read_marks
from redis_server import RedisServer, start_redis


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def broker_url(own_redis: RedisServer) -> str:
    return own_redis.url


def test_a_redis_restart_mid_drain_loses_nothing(app, start_worker, marks, own_redis):
    """The pool processes and their flushers lose their connections and the server's script
    cache mid-batch; they reconnect, reload the scripts, and finish every task."""
    import coreapp

    worker = start_worker("-c", "2")
    results = [coreapp.sleep.delay(0.02, f"t{i}") for i in range(200)]
    wait_until(lambda: len(read_marks(marks, "finished")) >= 30, 20, message="some tasks done")
    own_redis.restart()
    assert [r.get(timeout=60) for r in results] == [f"t{i}" for i in range(200)]
    assert {line.split()[0] for line in read_marks(marks, "finished")} == {f"t{i}" for i in range(200)}
    assert worker.proc is not None and worker.proc.poll() is None
    assert coreapp.add.delay(2, 3).get(timeout=10) == 5
