"""DESIGN.md promises 1-3 and 8 against real worker processes: kill -9, long tasks, poison."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from celeriac import states
from celeriac.exceptions import RemoteTaskError
from celeriac.testing import wait_until
from conftest import read_marks

FAST_LEASE = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}


def _broker_of_kind(kind: str, app, redis_url: str, tmp_path, monkeypatch) -> str:
    """The broker URL for ``kind`` ("redis": the test's server; "sqlite": a file of the test's),
    made the app's and the workers' (CELERIAC_BROKER_URL)."""
    url = redis_url if kind == "redis" else f"sqlite:///{tmp_path / 'b.db'}"
    if kind == "sqlite":
        monkeypatch.setenv("CELERIAC_BROKER_URL", url)
        app.conf.broker_url = url
        app._reset_connections()
    return url


def test_worker_killed_mid_task_loses_nothing_and_another_worker_finishes_fast(app, start_worker, marks):
    """Promises 1 and 3: kill -9 the whole worker mid-task; every task still completes, and the
    running one restarts on a second worker within seconds of the heartbeat stopping."""
    import coreapp

    app.conf.broker_lease_seconds = 2
    victim = start_worker("-c", "2", env=FAST_LEASE, name="victim")
    results = [coreapp.sleep.delay(0.3, f"t{i}") for i in range(20)]
    wait_until(lambda: len(read_marks(marks, "finished")) >= 4, 20, message="some tasks done")
    children = [p.pid for p in psutil.Process(victim.pid).children()]
    killed_at = time.time()
    victim.kill()
    wait_until(lambda: not any(psutil.pid_exists(c) and psutil.Process(c).status() != "zombie"
                               for c in children), 5, message="pool processes died with their supervisor")
    start_worker("-c", "2", env=FAST_LEASE, name="rescuer")
    assert [r.get(timeout=30) for r in results] == [f"t{i}" for i in range(20)]
    finished = {line.split()[0] for line in read_marks(marks, "finished")}
    assert finished == {f"t{i}" for i in range(20)}
    # Lease 2 s + one recovery pass (1 s) + start-up: well within 10 s of the kill.
    assert time.time() - killed_at < 15


def test_long_task_is_not_redelivered_while_its_worker_lives(app, start_worker, marks):
    """Promise 2: a task running 3x the lease runs once, though another worker is idle."""
    import coreapp

    env = {"CELERIAC_TEST_LEASE": "1", "CELERIAC_TEST_HEARTBEAT": "0.25"}
    start_worker("-c", "1", env=env, name="busy")
    result = coreapp.sleep.delay(3.5, "long")
    wait_until(lambda: read_marks(marks, "started"), 10, message="long task started")
    start_worker("-c", "1", env=env, name="idle")
    assert result.get(timeout=20) == "long"
    assert len(read_marks(marks, "started")) == 1
    assert len(read_marks(marks, "finished")) == 1


def test_child_killed_mid_task_with_reject_on_worker_lost_off_records_worker_lost(app, start_worker, marks):
    import coreapp

    start_worker("-c", "1")
    result = coreapp.crash.delay()
    with pytest.raises(RemoteTaskError, match="exited prematurely: exit code 7") as caught:
        result.get(timeout=15)
    assert type(caught.value).__name__ == "WorkerLostError"
    assert coreapp.add.delay(1, 2).get(timeout=15) == 3  # the pool refilled


def test_a_killed_pool_process_has_its_task_run_again_by_default(app, start_worker, marks):
    import coreapp

    start_worker("-c", "1")
    assert coreapp.crash_once.delay("a").get(timeout=20) == "survived"
    assert read_marks(marks, "crashed-a") == [""]


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_a_stored_result_is_never_run_again_when_the_next_task_kills_its_process(
        app, start_worker, redis_url, marks, tmp_path, monkeypatch, kind):
    """A finished task's result and its ack are written together: a pool process killed by the
    next task it ran (a segfault, os._exit, the OOM killer) must not leave the finished one
    stored yet leased, to run a second time. On SQLite they were two transactions, and under
    load the crash fell between them about one time in four."""
    import coreapp

    url = _broker_of_kind(kind, app, redis_url, tmp_path, monkeypatch)
    start_worker("-c", "1", env={"CELERIAC_BROKER_URL": url})
    tags = [f"t{i}" for i in range(8)]
    for tag in tags:
        assert coreapp.record.delay(tag).get(timeout=20) == tag
        lost = coreapp.crash.delay()  # at once: the process that just finished runs it, and dies
        with pytest.raises(RemoteTaskError, match="exited prematurely"):
            lost.get(timeout=30)
        # The same for a task that rejected itself: REJECTED stored, dead-lettered, never run again.
        refused = coreapp.refuse.delay(tag)
        wait_until(lambda r=refused: r.state == states.REJECTED, 20, 0.02, message="the task REJECTED")
        lost = coreapp.crash.delay()
        with pytest.raises(RemoteTaskError, match="exited prematurely"):
            lost.get(timeout=30)
    wait_until(lambda: app.broker.stats(["celery"])[0].unacked == 0, 10, 0.05, message="nothing left leased")
    assert coreapp.noop.delay().get(timeout=20) is None  # a task after the last crash: every rerun is in
    assert sorted(line.split()[0] for line in read_marks(marks, "record")) == sorted(tags)
    assert sorted(read_marks(marks, "refused")) == sorted(tags)
    assert len(app.broker.dead_letters("celery")) == len(tags)


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_a_retry_is_sent_and_its_attempt_acked_together_when_the_next_task_kills_the_process(
        app, start_worker, redis_url, marks, tmp_path, monkeypatch, kind):
    """A retry stores RETRY, queues the next attempt and acks this one. If a process killed by
    the next task it ran could split the last two, the redelivered attempt would queue a second
    next attempt: two chains of the same task from then on. The next attempt runs once."""
    import coreapp

    url = _broker_of_kind(kind, app, redis_url, tmp_path, monkeypatch)
    start_worker("-c", "1", env={"CELERIAC_BROKER_URL": url})
    tags = [f"t{i}" for i in range(8)]
    for tag in tags:
        retried = coreapp.retry_once.delay(tag)
        lost = coreapp.crash.delay()  # right behind it: the same process runs it as the retry is written
        with pytest.raises(RemoteTaskError, match="exited prematurely"):
            lost.get(timeout=30)
        assert retried.get(timeout=30) == tag
    wait_until(lambda: app.broker.stats(["celery"])[0].unacked == 0, 10, 0.05, message="nothing left leased")
    assert coreapp.noop.delay().get(timeout=20) is None
    attempts = [tuple(line.split()) for line in read_marks(marks, "retry_once")]
    assert sorted(a for a in attempts if a[1] == "1") == [(tag, "1") for tag in tags], attempts


def test_poison_task_is_dead_lettered_after_the_cap_while_others_go_on(app, start_worker, marks):
    """Promise 8: a task that kills its process every time ends dead-lettered with a reason."""
    import coreapp

    start_worker("-c", "2")
    poisoned = coreapp.poison.delay()
    others = [coreapp.add.delay(i, i) for i in range(20)]
    assert [r.get(timeout=30) for r in others] == [2 * i for i in range(20)]
    with pytest.raises(RemoteTaskError, match="poison"):
        poisoned.get(timeout=30)
    cap = app.conf.task_max_redeliveries
    assert len(read_marks(marks, "poison")) == cap + 1
    dead = app.broker.dead_letters("celery")
    assert len(dead) == 1 and "redelivered" in dead[0].reason
    assert coreapp.add.delay(5, 5).get(timeout=10) == 10


def test_soft_time_limit_raises_inside_the_task(app, start_worker, marks):
    import coreapp

    start_worker("-c", "1")
    assert coreapp.soft_limited.delay().get(timeout=10) == "cleaned up"
    assert read_marks(marks, "soft") == ["caught"]


def test_hard_time_limit_kills_only_that_process_and_replaces_it(app, start_worker, marks):
    import coreapp

    start_worker("-c", "2")
    before = coreapp.pid.delay().get(timeout=10)
    result = coreapp.hard_limited.delay()
    with pytest.raises(RemoteTaskError, match="TimeLimitExceeded") as caught:
        result.get(timeout=15)
    assert type(caught.value).__name__ == "TimeLimitExceeded"
    killed = int(read_marks(marks, "hard")[0])
    wait_until(lambda: not psutil.pid_exists(killed) or psutil.Process(killed).status() == "zombie", 5)
    pids = {coreapp.pid.delay().get(timeout=10) for _ in range(10)}
    assert killed not in pids
    assert before not in pids or before != killed


def test_warm_shutdown_returns_prefetched_tasks_at_once(app, start_worker, marks):
    """SIGTERM: the running task finishes; prefetched, unstarted ones go back immediately."""
    import coreapp

    running = coreapp.sleep.delay(2.0, "running")
    waiting = [coreapp.record.delay(f"r{i}") for i in range(3)]
    worker = start_worker("-c", "1", "--prefetch-multiplier", "4")
    wait_until(lambda: read_marks(marks, "started"), 10, message="task started")
    wait_until(lambda: app.broker.stats(["celery"])[0].unacked == 4, 5, message="prefetched")
    worker.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: app.broker.stats(["celery"])[0].ready_total == 3, 1.5, interval=0.01,
               message="prefetched tasks back in the queue while the running task still runs")
    assert read_marks(marks, "finished") == []
    assert worker.proc.wait(15) == 0
    assert running.get(timeout=1) == "running"
    assert read_marks(marks, "record") == []
    start_worker("-c", "1", name="next")
    assert [r.get(timeout=10) for r in waiting] == ["r0", "r1", "r2"]


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_warm_shutdown_that_times_out_ends_within_its_bound(app, start_worker, marks, pool):
    """worker_shutdown_timeout bounds the whole stop (issue 10, finding 15): no blocking read of
    a helper thread (up to a second each) is waited out after the deadline."""
    import coreapp

    # What stopping an idle worker costs on this machine now (the suite runs tests side by side):
    # the bound is judged beyond it, so a loaded machine does not fail it and a wait of a
    # second after the deadline still does.
    idle = start_worker("-c", "2", "-P", pool, name="idle")
    started = time.monotonic()
    idle.proc.send_signal(signal.SIGTERM)
    assert idle.proc.wait(15) == 0
    baseline = time.monotonic() - started

    worker = start_worker("-c", "2", "-P", pool, env={"CELERIAC_TEST_SHUTDOWN": "2"})
    results = [coreapp.sleep.delay(5, f"long{i}") for i in range(2)]
    wait_until(lambda: len(read_marks(marks, "started")) == 2, 10, message="both running")
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(15) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 2 + baseline + 0.6, f"stopped after {elapsed:.2f} s; an idle worker took {baseline:.2f} s"
    start_worker("-c", "2", name="next")
    assert [r.get(timeout=30) for r in results] == ["long0", "long1"]


def test_cold_shutdown_puts_running_tasks_back(app, start_worker, marks):
    """A second SIGTERM stops at once; the interrupted task is run again (at-least-once)."""
    import coreapp

    worker = start_worker("-c", "1")
    result = coreapp.sleep.delay(3.0, "interrupted")
    wait_until(lambda: read_marks(marks, "started"), 10)
    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(10) == 0
    assert read_marks(marks, "finished") == []
    start_worker("-c", "1", name="second")
    assert result.get(timeout=15) == "interrupted"
    assert len(read_marks(marks, "started")) == 2


def test_bad_input_never_kills_the_worker(app, start_worker, redis_url, marks):
    """Promise 8: garbage bytes, an unknown task, undecodable arguments: each dead-lettered with
    a reason (and FAILURE where the message has an id); the worker and its pool go on."""
    import coreapp

    from celeriac.testing import push_raw

    worker = start_worker("-c", "1")
    pool_pid = coreapp.pid.delay().get(timeout=10)
    push_raw(redis_url, "celery", b"\x00\xffnot json at all")
    push_raw(redis_url, "celery", b'{"id": "unknown-1", "task": "coreapp.does_not_exist", "args": []}')
    push_raw(redis_url, "celery", b'{"id": "badargs-1", "task": "coreapp.add", "args": "not-a-list"}')
    assert coreapp.add.delay(2, 2).get(timeout=10) == 4
    assert worker.proc.poll() is None
    assert coreapp.pid.delay().get(timeout=10) == pool_pid
    reasons = sorted(d.reason for d in app.broker.dead_letters("celery"))
    assert len(reasons) == 3
    assert any("not valid JSON" in r for r in reasons)
    assert any("unknown task 'coreapp.does_not_exist'" in r for r in reasons)
    assert any("args" in r and "Expected `array`" in r for r in reasons)
    unknown = app.AsyncResult("unknown-1")
    assert unknown.state == states.FAILURE and "does_not_exist" in str(unknown.info)
    assert app.AsyncResult("badargs-1").state == states.FAILURE
    assert "unregistered task" in worker.log()


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_input_that_fails_before_the_task_starts_is_dead_lettered_not_crash_looped(
        app, start_worker, redis_url, marks, tmp_path, monkeypatch, kind):
    """Promise 8 in the shapes a foreign producer manages (issue 10, finding 5): JSON nested
    2,000 deep (RecursionError in decoding), invalid UTF-8 inside a string, a body over
    task_message_max_bytes. Each is dead-lettered with its reason, the same pool process goes
    on (no crash loop), and the good task queued behind them runs."""
    import coreapp

    from celeriac.testing import push_raw

    url = _broker_of_kind(kind, app, redis_url, tmp_path, monkeypatch)
    worker = start_worker("-c", "1", env={"CELERIAC_BROKER_URL": url})
    pool_pid = coreapp.pid.delay().get(timeout=10)
    deep = b'{"id": "deep-1", "task": "coreapp.add", "args": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    push_raw(url, "celery", deep)
    push_raw(url, "celery", b'{"id": "utf8-1", "task": "coreapp.add", "args": ["' + bytes([0xFF, 0xFE]) + b'"]}')
    push_raw(url, "celery", b'{"id": "big-1", "task": "coreapp.add", "args": ["' + b"x" * (17 * 1024 * 1024) + b'"]}')
    assert coreapp.add.delay(2, 2).get(timeout=30) == 4
    assert coreapp.pid.delay().get(timeout=10) == pool_pid, "a pool process died on bad input"
    reasons = [d.reason for d in app.broker.dead_letters("celery")]
    assert len(reasons) == 3, reasons
    assert any("larger than task_message_max_bytes" in r for r in reasons), reasons
    assert worker.proc.poll() is None
    assert "crashed" not in worker.log()


def test_delayed_tasks_cost_the_worker_no_memory(app, start_worker):
    """Promise 4: 10,000 countdown tasks wait in the broker; the worker's RSS stays flat."""
    worker = start_worker("-c", "2")
    time.sleep(1.0)

    def rss() -> int:
        proc = psutil.Process(worker.pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children())

    before = rss()
    app.send_many("coreapp.noop", [((), {})] * 10_000, countdown=3600)
    assert app.broker.stats(["celery"])[0].delayed == 10_000
    time.sleep(3.0)
    after = rss()
    assert after - before < max(0.05 * before, 2 * 1024 * 1024), (before, after)


def test_delayed_tasks_start_within_milliseconds_of_their_due_time(app, start_worker, marks):
    """Promise 4: the promoter sleeps exactly until the soonest due time (woken by producers
    when a sooner one arrives), so starts are milliseconds late, not a polling interval. Ten
    tasks due at staggered times; the median lateness bound (40 ms) is far under any poll
    period that would pass unnoticed, and the median keeps one slow moment of a loaded machine
    from deciding."""
    import coreapp

    start_worker("-c", "2")
    coreapp.add.delay(0, 0).get(timeout=10)
    due = {}
    for i in range(10):
        countdown = 0.4 + 0.13 * i
        due[f"d{i}"] = time.time() + countdown
        coreapp.record.apply_async((f"d{i}",), countdown=countdown)
    wait_until(lambda: len(read_marks(marks, "record")) == 10, 15, message="all ten ran")
    lateness = sorted(float(line.split()[2]) - due[line.split()[0]] for line in read_marks(marks, "record"))
    assert lateness[0] >= -0.01, lateness  # never early
    assert lateness[len(lateness) // 2] < 0.04, lateness


def test_priority_higher_number_runs_first_beyond_prefetch(app, start_worker, marks):
    """Promise 7: with a backlog of low-priority work, a priority-9 task runs next."""
    import coreapp

    for i in range(30):
        coreapp.sleep.apply_async((0.05, f"low{i}"), priority=0)
    start_worker("-c", "1", "--prefetch-multiplier", "1")
    wait_until(lambda: len(read_marks(marks, "started")) >= 3, 10)
    seen = len(read_marks(marks, "started"))
    coreapp.sleep.apply_async((0, "HIGH"), priority=9).get(timeout=10)
    order = [line.split()[0] for line in read_marks(marks, "started")]
    assert order.index("HIGH") <= seen + 2, order


def test_rate_limit_is_global_across_workers(app, start_worker, marks):
    """Promise 6: rate_limit='10/s' holds across two workers of two processes each."""
    import coreapp

    start_worker("-c", "2", name="a")
    start_worker("-c", "2", name="b")
    results = [coreapp.limited.delay(i) for i in range(25)]
    assert sorted(r.get(timeout=30) for r in results) == list(range(25))
    times = sorted(float(line.split()[1]) for line in read_marks(marks, "limited"))
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t < start + 1.0)
        assert in_window <= 11, (i, in_window)
    assert times[-1] - times[0] >= 2.0
    assert {line.split()[0] for line in read_marks(marks, "limited")} == {str(i) for i in range(25)}


def test_worker_warns_without_persistence_and_refuses_evicting_redis(tmp_path):
    """At start-up: a warning when Redis persistence is off; a refusal on an evicting policy."""
    import subprocess
    import sys

    from conftest import APPS
    from redis_server import start_redis

    for extra, appendonly, expect, code in [
        (("--maxmemory-policy", "allkeys-lru"), True, "maxmemory-policy is 'allkeys-lru'", 1),
        ((), False, "persistence is off", None),
    ]:
        server = start_redis(*extra, appendonly=appendonly)
        try:
            env = {**os.environ, "CELERIAC_BROKER_URL": server.url, "PYTHONPATH": APPS}
            proc = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "coreapp", "worker", "-l", "info"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                if code is not None:
                    out = proc.communicate(timeout=20)[0].decode()
                    assert proc.returncode == code and expect in out
                    assert out.count("\n") <= 3, out  # one clear line, not a traceback
                else:
                    deadline = time.monotonic() + 20
                    out = b""
                    while expect.encode() not in out and time.monotonic() < deadline:
                        out += os.read(proc.stdout.fileno(), 65536)
                    assert expect.encode() in out
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(20)
                proc.stdout.close()
        finally:
            server.stop()


def test_max_memory_per_child_replaces_a_bloated_process_after_its_task(app, start_worker):
    """The task that crossed the limit completes; its process is then replaced."""
    import coreapp

    start_worker("-c", "1", "--max-memory-per-child", str(150 * 1024), "--prefetch-multiplier", "1")
    first = coreapp.pid.delay().get(timeout=10)
    assert coreapp.hog.delay(5).get(timeout=10) == first  # under the limit: same process
    assert coreapp.hog.delay(200).get(timeout=20) == first  # crosses it, and still completes
    assert coreapp.pid.delay().get(timeout=20) != first
