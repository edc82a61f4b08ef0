"""A Redis restart under an asyncio pool with many tasks in flight: nothing lost, nothing run twice
(the process gives back what it does not run once Redis answers; its running tasks stay its own)."""

from __future__ import annotations

from collections import Counter
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


@pytest.mark.parametrize("down_for", [1.5, 4.5])
def test_a_redis_restart_under_an_asyncio_pool_loses_nothing_and_runs_nothing_twice(app, start_worker, marks,
                                                                                   own_redis, down_for):
    import asyncapp

    env = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5", "CELERIAC_TEST_ASYNC_CONCURRENCY": "50"}
    worker = start_worker("-P", "asyncio", "-c", "1", env=env, app_spec="asyncapp")
    # All running and slots to spare, so the process is fetching when Redis goes; the tasks
    # outlast the outage, so they still run when it answers again.
    results = [asyncapp.nap.delay(down_for + 3.0, f"t{i}") for i in range(30)]
    wait_until(lambda: len(read_marks(marks, "async-started")) >= 30, 20, message="all running")
    own_redis.restart(down_for)
    assert [r.get(timeout=90) for r in results] == [f"t{i}" for i in range(30)]
    # The process met the outage (its warning may be logged just after the last result is read).
    wait_until(lambda: "waits for it" in worker.log(), 10, 0.1, message="the pool process to see the outage")
    started = Counter(line.split()[0] for line in read_marks(marks, "async-started"))
    assert set(started) == {f"t{i}" for i in range(30)}
    assert [tag for tag, n in started.items() if n > 1] == []
    assert worker.proc is not None and worker.proc.poll() is None
    log = worker.log()
    assert "crashed" not in log and "Traceback" not in log, log[-3000:]
