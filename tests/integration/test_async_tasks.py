"""``async def`` tasks on real workers: ``-P asyncio`` runs many at once per pool process, time
limits act by cancellation, and a kill -9 loses nothing, on Redis and on SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from celeriac.exceptions import RemoteTaskError
from celeriac.testing import wait_until
from conftest import APPS, read_marks

FAST_LEASE = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}


@pytest.fixture(params=["redis", "sqlite"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path}/broker.db"


def pool_pids(worker) -> list[int]:
    return [p.pid for p in psutil.Process(worker.pid).children()]


def test_many_async_tasks_run_at_once_in_one_pool_process(app, start_worker, marks):
    """50 tasks each awaiting 0.2 s on -P asyncio -c 1 overlap: far less than 50 x 0.2 s."""
    import asyncapp

    worker = start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    assert "(asyncio, 100 tasks at once each)" in worker.log()
    started = time.monotonic()
    results = [asyncapp.nap.delay(0.2, str(i)) for i in range(50)]
    assert [r.get(timeout=30) for r in results] == [str(i) for i in range(50)]
    elapsed = time.monotonic() - started
    assert elapsed < 5.0, f"50 x 0.2 s took {elapsed:.2f} s: not concurrent"
    # One pool process ran them all, and at some moment at least 10 were in flight together.
    lines = [line.split() for line in read_marks(marks, "async-started")]
    assert {pid for _, pid, _ in lines} == {str(p) for p in pool_pids(worker)}
    starts = sorted(float(t) for _, _, t in lines)
    ends = sorted(float(line.split()[2]) for line in read_marks(marks, "async-finished"))
    overlap = max(sum(1 for s in starts if s <= t) - sum(1 for e in ends if e <= t) for t in starts)
    assert overlap >= 10


def test_soft_limit_raises_inside_the_coroutine(app, start_worker, marks):
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    assert asyncapp.soft_async.delay().get(timeout=15) == "cleaned up"
    assert read_marks(marks, "soft-async") == ["caught"]


def test_hard_limit_cancels_without_killing_the_process(app, start_worker):
    """The hard limit of a task that awaits is a cancellation: its neighbours and its process
    live on."""
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    before = asyncapp.who.delay().get(timeout=15)[1]
    neighbour = asyncapp.nap.delay(1.5, "neighbour")
    started = time.monotonic()
    with pytest.raises(RemoteTaskError, match=r"TimeLimitExceeded\(0.5\)") as caught:
        asyncapp.hard_async.delay().get(timeout=15)
    assert type(caught.value).__name__ == "TimeLimitExceeded"
    assert time.monotonic() - started < 1.4  # cancelled at 0.5 s, not at the kill's 1.5 s
    assert neighbour.get(timeout=15) == "neighbour"
    assert asyncapp.who.delay().get(timeout=15)[1] == before


def test_hard_limit_of_a_coroutine_that_never_yields_kills_its_process(app, start_worker, marks):
    """No cancellation stops a coroutine that blocks the loop: the supervisor kills the process
    past the limit (and its grace); the task fails with TimeLimitExceeded, the pool is
    replaced, and a task that shared the process is redelivered, not lost."""
    import asyncapp

    worker = start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    before = pool_pids(worker)
    victim = asyncapp.nap.delay(0.5, "shared")
    wait_until(lambda: read_marks(marks, "async-started"), 15, message="neighbour started")
    with pytest.raises(RemoteTaskError, match=r"TimeLimitExceeded\(0.5\)") as caught:
        asyncapp.hard_blocking.delay().get(timeout=15)
    assert type(caught.value).__name__ == "TimeLimitExceeded"
    assert victim.get(timeout=20) == "shared"
    after = wait_until(lambda: pool_pids(worker), 10, message="pool process replaced")
    assert after != before


def test_retry_inside_an_async_task(app, start_worker, marks):
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    assert asyncapp.flaky_async.delay(2).get(timeout=15) == 2
    assert read_marks(marks, "flaky-async") == ["0", "1", "2"]


def test_sync_task_on_asyncio_pool_runs_in_a_thread(app, start_worker):
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    started = time.monotonic()
    results = [asyncapp.sync_in_async_pool.delay() for _ in range(5)]
    names = [r.get(timeout=15) for r in results]
    assert all(name.startswith("celeriac-sync") for name in names)
    assert time.monotonic() - started < 5 * 0.2 + 3  # ran side by side; generous for a loaded host


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_async_task_on_other_pools_runs_in_asyncio_run(app, start_worker, pool):
    """Chosen per task: a prefork or threads worker runs an async def task to completion with
    asyncio.run, its time limits still cancellations inside the coroutine."""
    import asyncapp

    worker = start_worker("-P", pool, "-c", "1", app_spec="asyncapp")
    task_id, pid = asyncapp.who.delay(0.01).get(timeout=15)
    assert pid in (pool_pids(worker) if pool == "prefork" else [worker.pid]) and task_id
    assert asyncapp.soft_async.delay().get(timeout=15) == "cleaned up"
    # The hard limit is a cancellation too (threads had none before): the process lives on.
    started = time.monotonic()
    with pytest.raises(RemoteTaskError, match=r"TimeLimitExceeded\(0.5\)"):
        asyncapp.hard_async.delay().get(timeout=15)
    assert time.monotonic() - started < 1.4
    assert asyncapp.who.delay().get(timeout=15)[1] == pid


def _ledger(marks: Path) -> tuple[dict[str, list[tuple[str, int]]], set[str]]:
    starts: dict[str, list[tuple[str, int]]] = {}
    for line in read_marks(marks, "ledger-started"):
        tag, pid, redelivered, _ = line.split()
        starts.setdefault(tag, []).append((pid, int(redelivered)))
    finished = {line.split()[0] for line in read_marks(marks, "ledger-finished")}
    return starts, finished


def test_kill_9_of_an_asyncio_pool_process_recovers_every_task(app, start_worker, marks):
    """Every task the killed process was running comes back charged (redelivered), every one
    it had prefetched comes back uncharged; none is lost."""
    import asyncapp

    worker = start_worker("-P", "asyncio", "-c", "1", "--prefetch-multiplier", "4",
                          env={"CELERIAC_TEST_ASYNC_CONCURRENCY": "8"}, app_spec="asyncapp")
    results = [asyncapp.ledger.delay(2.0, f"t{i}") for i in range(24)]
    wait_until(lambda: len(read_marks(marks, "ledger-started")) >= 8, 20, message="8 running")
    (victim,) = pool_pids(worker)
    first_run = {tag for tag, runs in _ledger(marks)[0].items() if runs[0][0] == str(victim)}
    os.kill(victim, signal.SIGKILL)
    assert sorted(r.get(timeout=60) for r in results) == sorted(f"t{i}" for i in range(24))
    starts, finished = _ledger(marks)
    assert finished == {f"t{i}" for i in range(24)}
    assert len(first_run) == 8
    for tag in first_run:  # running when killed: run again, as a redelivery
        assert len(starts[tag]) == 2 and starts[tag][1][1] == 1, (tag, starts[tag])
    for tag, runs in starts.items():
        if tag not in first_run:  # prefetched or still queued: started once, not a redelivery
            assert runs == [(runs[0][0], 0)], (tag, runs)


def test_kill_9_of_the_whole_asyncio_worker_loses_nothing(app, start_worker, marks):
    """The supervisor and its pool process die together; another worker takes over every task
    when the lease lapses."""
    import asyncapp

    app.conf.broker_lease_seconds = 2
    victim = start_worker("-P", "asyncio", "-c", "1", env={**FAST_LEASE, "CELERIAC_TEST_ASYNC_CONCURRENCY": "8"},
                          app_spec="asyncapp", name="victim")
    results = [asyncapp.ledger.delay(1.5, f"t{i}") for i in range(20)]
    wait_until(lambda: len(read_marks(marks, "ledger-started")) >= 8, 20, message="8 running")
    family = [victim.pid, *pool_pids(victim)]
    for pid in family:
        os.kill(pid, signal.SIGKILL)
    start_worker("-P", "asyncio", "-c", "1", env=FAST_LEASE, app_spec="asyncapp", name="rescuer")
    assert sorted(r.get(timeout=60) for r in results) == sorted(f"t{i}" for i in range(20))
    assert _ledger(marks)[1] == {f"t{i}" for i in range(20)}


def _inspect(broker_url: str, *args: str) -> object:
    path = [APPS, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "CELERIAC_BROKER_URL": broker_url}
    out = subprocess.run([sys.executable, "-m", "celeriac", "-A", "asyncapp", "inspect", *args, "--json", "-t", "5"],
                         env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_inspect_active_lists_every_task_a_process_runs(app, start_worker, marks, broker_url):
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp", name="w1")
    results = [asyncapp.nap.delay(4, f"a{i}") for i in range(6)]
    wait_until(lambda: len(read_marks(marks, "async-started")) == 6, 15, message="6 running")
    [active] = _inspect(broker_url, "active").values()
    assert sorted(item["id"] for item in active) == sorted(r.id for r in results)
    assert len({item["worker_pid"] for item in active}) == 1


def test_warm_shutdown_finishes_running_async_tasks_and_returns_prefetched(app, start_worker, marks):
    import asyncapp

    # Sent before the worker starts, so its one process leases all five in one fetch.
    running = [asyncapp.nap.delay(2.0, f"r{i}") for i in range(3)]
    waiting = [asyncapp.nap.delay(0.01, f"w{i}") for i in range(2)]
    worker = start_worker("-P", "asyncio", "-c", "1", "--prefetch-multiplier", "2",
                          env={"CELERIAC_TEST_ASYNC_CONCURRENCY": "3"}, app_spec="asyncapp")
    wait_until(lambda: len(read_marks(marks, "async-started")) == 3, 15, message="3 running")
    wait_until(lambda: app.broker.stats(["celery"])[0].unacked == 5, 5, message="2 prefetched")
    worker.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: app.broker.stats(["celery"])[0].ready_total == 2, 1.5, interval=0.01,
               message="prefetched tasks back in the queue while the running ones still run")
    assert worker.proc.wait(15) == 0
    assert sorted(r.get(timeout=1) for r in running) == ["r0", "r1", "r2"]
    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp", name="next")
    assert [r.get(timeout=15) for r in waiting] == ["w0", "w1"]


def test_ignore_result_and_revoke_apply_to_async_tasks(app, start_worker, marks):
    import asyncapp

    revoked = asyncapp.nap.apply_async((0.01, "revoked"), countdown=1)
    revoked.revoke()
    ignored = asyncapp.nap.apply_async((0.01, "ignored"), ignore_result=True)
    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    assert asyncapp.nap.delay(0.01, "after").get(timeout=15) == "after"
    wait_until(lambda: "ignored" in " ".join(read_marks(marks, "async-finished")), 10, message="ignored ran")
    assert ignored.state == "PENDING"  # ran, stored nothing
    assert revoked.get(timeout=15, propagate=False) is not None and revoked.state == "REVOKED"
    assert not any(line.startswith("revoked ") for line in read_marks(marks, "async-started"))


def test_revoke_terminate_cancels_only_that_task(app, start_worker, marks):
    """revoke(terminate=True) on -P asyncio cancels the one task; its process and neighbours go on."""
    import asyncapp

    worker = start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    before = pool_pids(worker)
    doomed = asyncapp.nap.delay(30, "doomed")
    neighbour = asyncapp.nap.delay(1.5, "neighbour")
    wait_until(lambda: len(read_marks(marks, "async-started")) == 2, 15, message="both running")
    app.control.revoke(doomed.id, terminate=True)
    wait_until(lambda: doomed.state == "REVOKED", 10, message="doomed revoked")
    assert neighbour.get(timeout=15) == "neighbour"
    assert not any(line.startswith("doomed ") for line in read_marks(marks, "async-finished"))
    assert pool_pids(worker) == before
    after = [asyncapp.nap.delay(0.3, f"after{i}") for i in range(2)]  # one lands in doomed's slot
    assert [r.get(timeout=15) for r in after] == ["after0", "after1"]


def test_rate_limit_holds_for_async_tasks_run_side_by_side(app, start_worker, marks):
    """rate_limit='5/s' on a pool that could start them all at once: starts stay 0.2 s apart."""
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    results = [asyncapp.paced_async.delay(f"p{i}") for i in range(8)]
    assert sorted(r.get(timeout=30) for r in results) == sorted(f"p{i}" for i in range(8))
    starts = sorted(float(line.split()[1]) for line in read_marks(marks, "paced-async"))
    assert starts[-1] - starts[0] >= 7 * 0.2 * 0.8, starts


def test_a_rate_limited_start_does_not_block_the_loop(app, start_worker, marks):
    """A message made ready just ahead of its rate-limit slot waits for it as a delayed start,
    not a sleep: the process's other tasks keep running meanwhile."""
    import asyncapp

    start_worker("-P", "asyncio", "-c", "1", app_spec="asyncapp")
    assert asyncapp.ticker.delay(1, 0.01).get(timeout=15) == 0  # warm
    ticker = asyncapp.ticker.delay(200, 0.01)
    paced = [asyncapp.paced_async.delay(f"p{i}") for i in range(8)]
    assert sorted(r.get(timeout=30) for r in paced) == sorted(f"p{i}" for i in range(8))
    assert ticker.get(timeout=30) <= 2  # blocking waits for the slots would make about 7
