"""Redis restarts under a draining worker: every task still completes, and the worker stays up."""

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


@pytest.mark.parametrize("down_for", [0.0, 1.5, 4.5])
def test_a_redis_restart_mid_drain_loses_nothing_and_runs_nothing_twice(app, start_worker, marks, own_redis,
                                                                        down_for):
    """The pool processes and their flushers lose their connections and the server's script
    cache mid-batch; they wait for Redis, reconnect, give back what a lost reply may have
    leased, and finish every task, without a pool process dying over it. An outage longer
    than the lease (4.5 s against 2 s) must not make anyone recover the live workers' tasks:
    every task starts exactly once."""
    import coreapp

    env = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}
    workers = [start_worker("-c", "2", env=env), start_worker("-c", "1", env=env)]
    results = [coreapp.sleep.delay(0.02, f"t{i}") for i in range(200)]
    wait_until(lambda: len(read_marks(marks, "finished")) >= 30, 20, message="some tasks done")
    own_redis.restart(down_for)
    assert [r.get(timeout=60) for r in results] == [f"t{i}" for i in range(200)]
    started = Counter(line.split()[0] for line in read_marks(marks, "started"))
    assert set(started) == {f"t{i}" for i in range(200)}
    assert [tag for tag, n in started.items() if n > 1] == []
    assert coreapp.add.delay(2, 3).get(timeout=10) == 5
    for worker in workers:
        assert worker.proc is not None and worker.proc.poll() is None
        log = worker.log()
        assert "crashed" not in log and "Traceback" not in log, log[-3000:]
    if down_for:
        assert any("waits for it" in w.log() and "broker reachable again" in w.log() for w in workers)


def test_a_pool_process_lost_while_redis_is_down_has_its_task_run_again(app, start_worker, marks, own_redis):
    """Its worker lives on and heartbeats, so only the worker itself can give that process's
    leases back; it keeps trying until Redis returns."""
    import coreapp
    import psutil

    worker = start_worker("-c", "1")
    result = coreapp.sleep.delay(1.0, "orphan")
    wait_until(lambda: read_marks(marks, "started"), 10, message="task started")
    child = psutil.Process(worker.pid).children()[0]
    own_redis.halt()
    child.kill()
    wait_until(lambda: "could not return the messages" in worker.log(), 10, message="release failed")
    own_redis.restart()
    assert result.get(timeout=30) == "orphan"
    assert [line.split()[0] for line in read_marks(marks, "finished")] == ["orphan"]


def test_a_redis_that_comes_back_empty_is_noticed(app, start_worker, own_redis):
    """Issue 10, finding 13: a Redis restarted without persistence (or flushed) has lost every
    queued task; the worker says so loudly instead of carrying on as if nothing happened."""
    import redis

    env = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}
    worker = start_worker("-c", "1", env=env)
    client = redis.Redis.from_url(own_redis.url)
    try:
        client.flushall()
    finally:
        client.close()
    wait_until(lambda: "lost its data" in worker.log(), 10, message="the worker noticed")
    assert "CRITICAL" in worker.log()
