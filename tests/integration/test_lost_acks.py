"""The broker comes back without acks it had confirmed while the worker's lease never lapsed:
a Redis restarted from a snapshot older than its last writes (what an AOF with ``appendfsync
everysec`` loses in its last second, or a replica promoted before it had every ack, lose). What
it lost stays leased to a live worker that thinks it acked it; the worker must give it back by
itself, with no restart of any process, so the task runs again instead of never."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from celeriac.testing import wait_until
from conftest import read_marks
from keepalive_proxy import KeepAliveProxy
from redis_server import RedisServer, _wait_replicating, start_redis

ENV = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}
GAVE_BACK = "that it no longer held"
CHANGED = "came back as another store"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    # No AOF: a restart loads the snapshot the test takes with SAVE, so what it loses is exact.
    server = start_redis(appendonly=False)
    yield server
    server.stop()


@pytest.fixture
def proxy(own_redis: RedisServer) -> Iterator[KeepAliveProxy]:
    running = KeepAliveProxy(own_redis.port)
    yield running
    running.stop()


def _snapshot(server: RedisServer) -> None:
    import redis

    client = redis.Redis(port=server.port, socket_timeout=10)
    try:
        client.save()
    finally:
        client.close()


def _wait_stored(results) -> None:
    import coreapp

    wait_until(lambda: all(coreapp.app.backend.get_meta(r.id)["status"] == "SUCCESS" for r in results), 20,
               message="the results were stored")


def _tags(marks, name: str) -> list[str]:
    return [line.split()[0] for line in read_marks(marks, name)]


class TestBehindAProxy:
    """Behind a proxy that keeps idle connections across the restart, the pool process that
    lost the acks never sees a connection error: only the broker's lineage tells."""

    @pytest.fixture
    def broker_url(self, proxy: KeepAliveProxy) -> str:
        return proxy.url()

    @pytest.mark.parametrize("pool", ["prefork", "solo"])
    def test_acks_the_restarted_broker_lost_are_given_back_by_the_same_live_pool_process(
            self, app, start_worker, marks, own_redis, proxy, pool) -> None:
        import coreapp

        # (Not -P asyncio: its fetch runs ahead while its tasks run, so it always has a command in
        # flight when the broker goes, sees the error, and gives back everything it does not
        # hold on that path.)
        worker = start_worker("-P", pool, "-c", "1", "--prefetch-multiplier", "8", env=ENV)
        # Seven short tasks, then a long one: all eight are leased in one fetch; the snapshot is
        # taken while they are leased, the seven are acked (with their results) after it, and
        # the server restarts from it while the long one runs.
        # The first waits at the gate until the snapshot is taken: none is acked before it.
        results = [coreapp.gated.delay(0.3, f"a{i}") for i in range(7)]
        results.append(coreapp.sleep.delay(4.0, "long"))
        wait_until(lambda: "a0" in _tags(marks, "started"), 20, message="the batch was fetched")
        _snapshot(own_redis)
        (marks / "gate").touch()
        wait_until(lambda: "long" in _tags(marks, "started"), 20, message="the short tasks ran")
        _wait_stored(results[:7])  # and acked: each ack goes in the write that stores its result
        first_run = {line.split()[0]: line.split()[1] for line in read_marks(marks, "finished")}
        assert set(first_run) == {f"a{i}" for i in range(7)}
        log = worker.log()
        assert GAVE_BACK not in log and CHANGED not in log  # the normal path reconciles nothing
        own_redis.restart(0.0, hard=True)

        # Every task's result is there within a bound: the ones whose acks were lost ran again.
        for r in results:
            assert r.get(timeout=30) is not None
        again = [line.split() for line in read_marks(marks, "finished")[len(first_run):]]
        assert {tag for tag, _ in again} >= {f"a{i}" for i in range(7)}
        # ... in the same pool process, which never saw the broker go (no restart, no error).
        assert {pid for _, pid in again} == set(first_run.values())
        assert worker.proc is not None and worker.proc.poll() is None
        log = worker.log()
        assert CHANGED in log and GAVE_BACK in log, log[-3000:]
        assert "waits for it" not in log, "the pool process saw the broker go: not the shape under test"
        assert proxy.silent_reconnects > 0
        assert "Traceback" not in log, log[-3000:]


    def test_acks_a_promoted_replica_never_saw_are_given_back_after_a_failover(
            self, app, start_worker, marks, own_redis, proxy) -> None:
        """The replica stops following the master after the batch was leased (a replica that
        fell behind, frozen: deterministic, unlike a race with the replication stream), the
        master is killed, and the proxy sends every connection to the replica, promoted."""
        import coreapp
        import redis

        replica = start_redis("--replicaof", "127.0.0.1", str(own_redis.port), appendonly=False)
        try:
            _wait_replicating(replica)
            worker = start_worker("-c", "1", "--prefetch-multiplier", "8", env=ENV)
            # The first waits at the gate until the replica is frozen: none is acked before it.
            results = [coreapp.gated.delay(0.3, f"a{i}") for i in range(7)]
            results.append(coreapp.sleep.delay(4.0, "long"))
            wait_until(lambda: "a0" in _tags(marks, "started"), 20, message="the batch was fetched")
            master = redis.Redis(port=own_redis.port, socket_timeout=10)
            promoted = redis.Redis(port=replica.port, socket_timeout=10)
            try:
                assert master.execute_command("WAIT", 1, 5000) == 1  # the replica has the leases
                promoted.execute_command("REPLICAOF", "NO", "ONE")  # ... and nothing after them
                (marks / "gate").touch()
                wait_until(lambda: "long" in _tags(marks, "started"), 20, message="the short tasks ran")
                _wait_stored(results[:7])  # and acked, on the old master only
                first_run = {line.split()[0]: line.split()[1] for line in read_marks(marks, "finished")}
                assert set(first_run) == {f"a{i}" for i in range(7)}
                own_redis.kill()
                proxy.backend_port = replica.port
            finally:
                master.close()
                promoted.close()
            for r in results:
                assert r.get(timeout=30) is not None
            again = [line.split() for line in read_marks(marks, "finished")[len(first_run):]]
            assert {tag for tag, _ in again} >= {f"a{i}" for i in range(7)}
            assert {pid for _, pid in again} == set(first_run.values())
            assert worker.proc is not None and worker.proc.poll() is None
            log = worker.log()
            assert CHANGED in log and GAVE_BACK in log, log[-3000:]
            assert "waits for it" not in log, "the pool process saw the broker go: not the shape under test"
            assert "Traceback" not in log, log[-3000:]
        finally:
            replica.stop()


class TestDirect:
    @pytest.fixture
    def broker_url(self, own_redis: RedisServer) -> str:
        return own_redis.url

    def test_a_lost_release_of_an_ended_pool_process_is_given_back_by_the_supervisor(
            self, app, start_worker, marks, own_redis) -> None:
        """The supervisor released a killed pool process's task (it ran again elsewhere and
        finished); the broker came back without that release or the later ack, so the task is
        leased to a consumer that no longer exists, of a worker that heartbeats."""
        import coreapp

        worker = start_worker("-c", "1", env=ENV)
        result = coreapp.sleep.delay(1.5, "victim")
        wait_until(lambda: "victim" in _tags(marks, "started"), 20, message="the task started")
        first_pid = int(read_marks(marks, "started")[0].split()[1])
        _snapshot(own_redis)
        psutil.Process(first_pid).kill()
        assert result.get(timeout=30) == "victim"  # released, run again by the new process
        runs = len(read_marks(marks, "finished"))
        own_redis.restart(0.0, hard=True)
        # The restarted broker has no result and leases the task to the killed process.
        assert coreapp.app.backend.get_meta(result.id)["status"] != "SUCCESS"
        wait_until(lambda: len(read_marks(marks, "finished")) > runs, 30, message="the task ran again")
        wait_until(lambda: coreapp.app.backend.get_meta(result.id)["status"] == "SUCCESS", 10,
                   message="its result was stored again")
        assert worker.proc is not None and worker.proc.poll() is None
        log = worker.log()
        assert "a pool process that is gone" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


class TestPersistent:
    @pytest.fixture
    def aof_redis(self) -> Iterator[RedisServer]:
        server = start_redis()  # with its AOF: a restart keeps what it confirmed
        yield server
        server.stop()

    @pytest.fixture
    def broker_url(self, aof_redis: RedisServer) -> str:
        return aof_redis.url

    def test_an_asyncio_pool_process_goes_on_beside_its_long_tasks_after_the_broker_came_back(
            self, app, start_worker, marks, aof_redis) -> None:
        """It gives back what it does not run once the broker answers, without waiting for its
        running tasks to end: a task sent after the restart runs while they still run, and they
        are neither given back nor run twice."""
        import asyncapp

        env = {**ENV, "CELERIAC_TEST_ASYNC_CONCURRENCY": "4"}
        worker = start_worker("-P", "asyncio", "-c", "1", env=env, app_spec="asyncapp")
        long = [asyncapp.nap.delay(12.0, f"long{i}") for i in range(2)]
        wait_until(lambda: len(read_marks(marks, "async-started")) >= 2, 20, message="the long tasks run")
        aof_redis.restart(1.0)
        assert asyncapp.nap.delay(0.1, "after").get(timeout=8) == "after"
        assert not any(r.ready() for r in long)  # it ran beside them, not after them
        assert [r.get(timeout=30) for r in long] == ["long0", "long1"]
        started = [line.split()[0] for line in read_marks(marks, "async-started")]
        assert sorted(started) == ["after", "long0", "long1"]  # nothing ran twice
        assert worker.proc is not None and worker.proc.poll() is None
        log = worker.log()
        assert "broker reachable again" in log and "Traceback" not in log, log[-3000:]
