"""Task API behaviour against real worker processes on Redis."""

from __future__ import annotations

import itertools
import time

import pytest

from celeriac import states
from celeriac.exceptions import EncodeError, RemoteTaskError, ResultTimeout
from celeriac.result import AsyncResult
from conftest import read_marks


def test_delay_runs_and_get_returns_result(app, start_worker):
    """delay() on the client, a real worker, get() returns the return value."""
    import coreapp

    start_worker("-c", "2")
    result = coreapp.add.delay(2, 3)
    assert result.get(timeout=10) == 5
    assert result.state == states.SUCCESS and result.successful() and result.ready()
    assert result.date_done is not None
    assert result.worker.startswith("w1@")


def test_send_task_by_name_from_app_without_the_code(app, start_worker, redis_url):
    """A client app that has no task code sends by name (the microservice seed)."""
    from celeriac import Celery

    start_worker()
    client = Celery("client", broker=redis_url, backend=redis_url, set_as_current=False)
    result = client.send_task("coreapp.add", args=[20, 22])
    assert client.AsyncResult(result.id).get(timeout=10) == 42
    client.close()


def test_retry_with_countdown_counts_retries(app, start_worker, marks):
    """self.retry(exc=, countdown=) runs again with request.retries incremented; RETRY recorded."""
    import coreapp

    start_worker()
    result = coreapp.flaky.delay(2)
    assert result.get(timeout=15) == 2
    assert read_marks(marks, "flaky") == ["0", "1", "2"]
    assert result.retries == 2


def test_retry_past_max_retries_fails_with_the_original_error(app, start_worker, marks):
    import coreapp

    start_worker()
    result = coreapp.flaky.delay(10)
    with pytest.raises(ConnectionError, match="attempt 3 failed"):
        result.get(timeout=15)
    assert read_marks(marks, "flaky") == ["0", "1", "2", "3"]


def test_autoretry_for_backs_off_exponentially(app, start_worker, marks):
    """autoretry_for + retry_backoff: 0.1 s, 0.2 s, 0.4 s between attempts (jitter off), then FAILURE."""
    import coreapp

    start_worker()
    result = coreapp.autoretry.delay()
    with pytest.raises(KeyError):
        result.get(timeout=15)
    times = [float(t) for t in read_marks(marks, "autoretry")]
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert gap >= expected * 0.9, gaps


def test_progress_state_and_meta_visible_while_running(app, start_worker):
    """update_state(state='PROGRESS', meta=...) is readable through AsyncResult.info (image seed)."""
    import coreapp

    start_worker()
    result = coreapp.progress.delay(10, 0.2)
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline:
        if result.state == "PROGRESS":
            seen = result.info
            break
        time.sleep(0.02)
    assert seen is not None and "progress" in seen and seen["message"].startswith("step")
    assert result.get(timeout=10) == {"done": 10}


def test_failure_is_stored_with_type_message_and_traceback(app, start_worker):
    import coreapp

    start_worker()
    result = coreapp.fail.delay("broken input")
    with pytest.raises(ValueError, match="broken input") as caught:
        result.get(timeout=10)
    assert isinstance(caught.value, RemoteTaskError)
    assert result.state == states.FAILURE and result.failed()
    assert "Traceback" in result.traceback and "ValueError: broken input" in result.traceback
    assert isinstance(result.info, ValueError)
    assert result.get(timeout=1, propagate=False).args == ("broken input",)


def test_ignore_result_stores_nothing(app, start_worker, marks):
    import coreapp

    start_worker()
    result = coreapp.quiet.delay("x")
    deadline = time.monotonic() + 10
    while not read_marks(marks, "quiet") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert read_marks(marks, "quiet") == ["x"]
    assert result.state == states.PENDING
    assert app.backend.read(result.id) is None


def test_ignore_result_per_call(app, start_worker):
    import coreapp

    start_worker()
    quiet = coreapp.add.apply_async((1, 1), ignore_result=True)
    loud = coreapp.add.delay(2, 2)
    assert loud.get(timeout=10) == 4
    time.sleep(0.2)
    assert app.backend.read(quiet.id) is None


def test_track_started_records_started_state(app, start_worker):
    import coreapp

    start_worker()
    result = coreapp.tracked.delay(1.0)
    deadline = time.monotonic() + 10
    while result.state == states.PENDING and time.monotonic() < deadline:
        time.sleep(0.02)
    assert result.state == states.STARTED
    assert result.get(timeout=10) == "tracked"


def test_unencodable_argument_fails_at_the_caller_naming_it(app):
    import coreapp

    with pytest.raises(EncodeError, match=r"kwargs\['when'\] \(object\)"):
        coreapp.add.apply_async((1,), {"when": object()})
    with pytest.raises(EncodeError, match=r"args\[1\] \(set\)|args\[1\]"):
        coreapp.add.delay(1, {1, 2}.__iter__())
    assert app.broker.stats(["celery"])[0].ready_total == 0


def test_result_that_json_cannot_carry_is_a_failure_not_a_success(app, start_worker):
    """A task is never reported SUCCESS unless its result is stored."""
    import coreapp

    start_worker()
    result = coreapp.unencodable_result.delay()
    with pytest.raises(RemoteTaskError, match="cannot encode object"):
        result.get(timeout=10)
    assert result.state == states.FAILURE


def test_result_expires(app, start_worker):
    """result_expires sets the TTL of the stored result."""
    import coreapp
    import redis

    start_worker()
    result = coreapp.add.delay(1, 2)
    assert result.get(timeout=10) == 3
    client = redis.Redis.from_url(app.broker_url)
    ttl = client.pttl(f"celeriac-task-meta-{{{result.id}}}")
    client.close()
    assert 0 < ttl <= 86400 * 1000


def test_get_times_out_with_timeout_error(app):
    result = AsyncResult("never-sent", app=app)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        result.get(timeout=0.3)
    with pytest.raises(ResultTimeout):
        result.get(timeout=0.1)
    assert time.monotonic() - started < 5


def test_get_waits_without_polling(app, start_worker, monkeypatch):
    """get() blocks on the store's notification: while a 3 s task runs, the waiting client
    sends the result store a handful of reads (one blocking wait per slice and the final read),
    where any polling loop would send one per poll. Results go to a redis-server of this test's
    own, so the count is the waiter's alone (the worker only writes there)."""
    import coreapp
    import redis

    from redis_server import start_redis

    results = start_redis()
    try:
        monkeypatch.setenv("CELERIAC_RESULT_BACKEND", results.url)
        app.conf.result_backend = results.url
        app._reset_connections()
        start_worker()
        result = coreapp.sleep.delay(3, "slow")
        client = redis.Redis.from_url(results.url)
        try:
            client.config_resetstat()
            assert result.get(timeout=20) == "slow"
            stats = client.info("commandstats")
        finally:
            client.close()
    finally:
        app.conf.result_backend = None
        app._reset_connections()
        results.stop()
    reads = sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("get", "blmove", "mget", "exists"))
    assert 1 <= reads <= 4, stats


def test_get_wakes_on_notification(app, start_worker):
    """get() returns as soon as the result is stored, not at a polling interval."""
    import coreapp

    start_worker()
    coreapp.add.delay(0, 0).get(timeout=10)  # warm up
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        coreapp.add.delay(1, 1).get(timeout=10)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.25, latencies


def test_get_waits_out_a_task_longer_than_redis_clients_default_read_timeout(app, start_worker):
    """redis-py reads with a 5 s timeout by default; a get() on a longer task must still just
    wait (the seeds run 30-300 s tasks and call get(timeout=...))."""
    import coreapp

    start_worker()
    assert coreapp.sleep.delay(5.5, "long").get(timeout=30) == "long"


def test_forget_removes_the_result(app, start_worker):
    import coreapp

    start_worker()
    result = coreapp.add.delay(1, 1)
    result.get(timeout=10)
    result.forget()
    assert AsyncResult(result.id, app=app).state == states.PENDING


def test_expired_task_is_revoked_not_run(app, start_worker, marks):
    import coreapp

    result = coreapp.record.apply_async(("late",), expires=0.2)
    time.sleep(0.5)
    start_worker()
    with pytest.raises(Exception, match="expired"):
        result.get(timeout=10)
    assert result.state == states.REVOKED
    assert read_marks(marks, "record") == []


def test_max_tasks_per_child_recycles_the_process(app, start_worker):
    import coreapp

    start_worker("-c", "1", "--max-tasks-per-child", "2", "--prefetch-multiplier", "1")
    pids = [coreapp.pid.delay().get(timeout=10) for _ in range(6)]
    assert len(set(pids)) == 3, pids


def test_queue_routing_and_worker_queues(app, start_worker, marks):
    """-Q selects queues; apply_async(queue=) and task_routes send there."""
    import coreapp

    start_worker("-Q", "high_priority,normal_priority")
    coreapp.record.apply_async(("on-low",), queue="low_priority")
    assert coreapp.record.apply_async(("on-high",), queue="high_priority").get(timeout=10) == "on-high"
    app.conf.task_routes = {"coreapp.add": {"queue": "normal_priority"}}
    try:
        assert coreapp.add.delay(1, 2).get(timeout=10) == 3
    finally:
        app.conf.task_routes = None
    time.sleep(0.3)
    assert [m.split()[0] for m in read_marks(marks, "record")] == ["on-high"]
    assert app.broker.stats(["low_priority"])[0].ready_total == 1


def test_publish_survives_a_dropped_connection(app, redis_url):
    """delay() keeps its own connection; when Redis drops it, the publish retry reconnects."""
    import coreapp
    import redis

    first = coreapp.add.delay(1, 1)
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)  # every client but this one
    finally:
        admin.close()
    second = coreapp.add.delay(2, 2)
    assert app.broker.stats(["celery"])[0].ready_total == 2
    assert first.id != second.id
