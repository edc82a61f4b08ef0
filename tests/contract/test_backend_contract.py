"""The result-store contract (``celeriac.backends.base``), run against memory, SQLite and Redis."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from celeriac import backends, brokers, states
from celeriac.backends.base import ResultBackend
from celeriac.backends.memory import MemoryBackend
from celeriac.backends.sqlite import SQLiteBackend

MakeBackend = Callable[..., ResultBackend]


def tid() -> str:
    return str(uuid.uuid4())


def later(delay: float, action: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), action()))
    thread.start()
    return thread


def test_write_then_read_returns_the_stored_bytes(backend: ResultBackend) -> None:
    """read returns exactly what write stored; unknown ids read as None."""
    task = tid()
    assert backend.read(task) is None
    backend.write([(task, b'{"status": "STARTED"}', False)])
    assert backend.read(task) == b'{"status": "STARTED"}'


def test_write_replaces_the_earlier_record_of_the_same_attempt(backend: ResultBackend) -> None:
    """A later write for the same id replaces the record (STARTED, then PROGRESS, then the
    outcome; and a dead letter run again once fixed). Whether a write may happen at all is
    judged before it reaches the store: a stale attempt's write is stopped by
    Broker.finish_fenced (tests/contract/test_leases.py), never by the store guessing."""
    task = tid()
    backend.write([(task, b"STARTED", False)])
    backend.write([(task, b"SUCCESS", True)])
    assert backend.read(task) == b"SUCCESS"


def test_a_batch_write_stores_every_record(backend: ResultBackend) -> None:
    """write stores all records of a batch; read_many answers in order, None for unknown."""
    a, b, unknown = tid(), tid(), tid()
    backend.write([(a, b"A", True), (b, b"B", False)])
    assert backend.read_many([b, unknown, a]) == [b"B", None, b"A"]


def test_delete_forgets_a_record(backend: ResultBackend) -> None:
    """delete (and forget) make the id unknown again; deleting an unknown id is no error."""
    task = tid()
    backend.store(task, states.SUCCESS, 42)
    backend.delete(task)
    assert backend.read(task) is None
    backend.delete(task)
    backend.store(task, states.SUCCESS, 42)
    backend.forget(task)
    assert backend.get_meta(task)["status"] == states.PENDING


def test_records_expire(make_backend: MakeBackend) -> None:
    """A record is gone (PENDING again) once ``expires`` seconds passed."""
    backend = make_backend(expires=0.3)
    task = tid()
    backend.store(task, states.SUCCESS, "done")
    assert backend.get_meta(task)["result"] == "done"
    time.sleep(0.5)
    assert backend.read(task) is None
    assert backend.get_meta(task)["status"] == states.PENDING


def test_records_without_expiry_stay(make_backend: MakeBackend) -> None:
    """expires=None keeps records (here: past the time a short expiry would have dropped them)."""
    backend = make_backend(expires=None)
    task = tid()
    backend.store(task, states.SUCCESS, 1)
    time.sleep(0.3)
    assert backend.get_meta(task)["result"] == 1


def test_get_meta_defaults_to_pending(backend: ResultBackend) -> None:
    """An unknown task reads as PENDING with no result."""
    task = tid()
    assert backend.get_meta(task) == {"task_id": task, "status": states.PENDING, "result": None}


def test_store_and_get_meta_round_trip(backend: ResultBackend) -> None:
    """store() encodes a meta record that get_meta/get_many decode, failure fields included."""
    ok, failed, progress, unknown = tid(), tid(), tid(), tid()
    backend.store(ok, states.SUCCESS, {"rows": [1, 2]}, worker="w1")
    backend.store(failed, states.FAILURE, None, exc_type="ValueError", exc_message="bad",
                  traceback="Traceback ...")
    backend.store(progress, "PROGRESS", {"done": 3, "total": 10})
    meta = backend.get_meta(ok)
    assert (meta["status"], meta["result"], meta["worker"]) == (states.SUCCESS, {"rows": [1, 2]}, "w1")
    assert "date_done" in meta
    metas = backend.get_many([failed, progress, unknown])
    assert (metas[0]["status"], metas[0]["exc_type"], metas[0]["traceback"]) == (
        states.FAILURE, "ValueError", "Traceback ...")
    assert metas[1]["result"] == {"done": 3, "total": 10} and "date_done" not in metas[1]
    assert metas[2]["status"] == states.PENDING


def test_wait_ready_returns_true_at_once_for_a_ready_record(backend: ResultBackend) -> None:
    """wait_ready on a task already ready returns True without waiting."""
    task = tid()
    backend.store(task, states.SUCCESS, 1)
    start = time.monotonic()
    assert backend.wait_ready(task, 5.0) is True
    assert time.monotonic() - start < 0.5


def test_wait_ready_returns_false_on_timeout(backend: ResultBackend) -> None:
    """wait_ready with nothing ready returns False after about ``timeout``."""
    task = tid()
    backend.store(task, states.STARTED)
    start = time.monotonic()
    assert backend.wait_ready(task, 0.3) is False
    assert 0.25 <= time.monotonic() - start < 2.0
    start = time.monotonic()
    assert backend.wait_ready(tid(), 0.2) is False
    assert 0.15 <= time.monotonic() - start < 2.0


def test_wait_ready_is_woken_promptly_by_a_ready_write(make_backend: MakeBackend) -> None:
    """A waiter is woken by another connection's ready write within a fraction of a second,
    not at its timeout."""
    waiter, writer = make_backend(), make_backend()
    task = tid()
    woke: list[tuple[bool, float]] = []
    thread = threading.Thread(target=lambda: woke.append((waiter.wait_ready(task, 5.0), time.monotonic())))
    thread.start()
    time.sleep(0.3)
    sent = time.monotonic()
    writer.store(task, states.SUCCESS, "x")
    thread.join(6)
    [(result, at)] = woke
    assert result is True
    assert at - sent < 0.5


def test_wait_for_returns_the_meta_once_ready(make_backend: MakeBackend) -> None:
    """wait_for blocks through unready states and returns the ready meta."""
    waiter, writer = make_backend(), make_backend()
    task = tid()
    writer.store(task, states.STARTED)
    thread = later(0.2, lambda: writer.store(task, states.SUCCESS, [1, 2, 3]))
    start = time.monotonic()
    meta = waiter.wait_for(task, timeout=5.0)
    thread.join(5)
    assert meta is not None and (meta["status"], meta["result"]) == (states.SUCCESS, [1, 2, 3])
    assert time.monotonic() - start < 1.5


def test_wait_for_returns_none_on_timeout(backend: ResultBackend) -> None:
    """wait_for gives None when the task is not ready in time."""
    task = tid()
    backend.store(task, states.STARTED)
    start = time.monotonic()
    assert backend.wait_for(task, timeout=0.3) is None
    assert time.monotonic() - start < 2.0


# -- implementation specifics ----------------------------------------------------------------

def test_memory_backends_built_from_one_url_share_records() -> None:
    """memory://name is one result store per process, so an app and a test see the same results."""
    name = f"memory://results-{uuid.uuid4().hex}"
    app_side, test_side = MemoryBackend(name), backends.from_url(name)
    elsewhere = backends.from_url(f"memory://other-{uuid.uuid4().hex}")
    task = tid()
    try:
        app_side.store(task, states.SUCCESS, 7)
        assert test_side.get_meta(task)["result"] == 7
        assert elsewhere.read(task) is None
    finally:
        app_side.flush()
        for b in (app_side, test_side, elsewhere):
            b.close()


def test_sqlite_results_can_share_the_broker_file(tmp_path: Path) -> None:
    """One sqlite:///x.db may hold both the broker's tables and the results."""
    url = f"sqlite:///{tmp_path / 'both.db'}"
    broker, backend = brokers.from_url(url), backends.from_url(url)
    try:
        broker.enqueue("q", b"m")
        backend.store("t1", states.SUCCESS, "r")
        assert broker.fetch(["q"], "w/1", 1, 0)[0].body == b"m"
        assert backend.get_meta("t1")["result"] == "r"
    finally:
        broker.close()
        backend.close()


def test_sqlite_wait_ready_without_the_doorbell_wakes_within_the_poll_cap(tmp_path: Path) -> None:
    """Where the doorbell cannot be used, wait_ready still wakes within the 50 ms poll."""
    url = f"sqlite:///{tmp_path / 'poll.db'}"
    waiter, writer = SQLiteBackend(url), SQLiteBackend(url)
    waiter._bell.enabled = writer._bell.enabled = False
    task = tid()
    try:
        thread = later(0.3, lambda: writer.store(task, states.SUCCESS, 1))
        start = time.monotonic()
        assert waiter.wait_ready(task, 5.0) is True
        assert time.monotonic() - start < 0.55
        thread.join(5)
    finally:
        waiter.close()
        writer.close()


def test_redis_waits_longer_than_the_socket_timeout_are_sliced_under_it(redis_url: str) -> None:
    """A get() may wait minutes for a long task; the client's socket timeout must not cut it
    short: each blocking command asks the server for less than the socket timeout, and the
    wait goes on until its own deadline (redis-py 8 reads with a 5 s timeout by default)."""
    backend = backends.from_url(redis_url, socket_timeout=0.4)
    try:
        task_id = uuid.uuid4().hex
        started = time.monotonic()
        assert backend.wait_for(task_id, timeout=1.2) is None
        assert backend.wait_ready(task_id, 1.0) is False
        assert time.monotonic() - started >= 1.2

        def finish_later() -> None:
            time.sleep(0.9)
            backend_b.store(task_id, states.SUCCESS, 7)

        backend_b = backends.from_url(redis_url)
        writer = threading.Thread(target=finish_later)
        writer.start()
        meta = backend.wait_for(task_id, timeout=10)
        # The waiter wakes on the write's first commands; the writer may still be reading the
        # replies to the rest, so its connection closes only once it is done.
        writer.join(10)
        assert meta is not None and meta["result"] == 7
        backend_b.close()
    finally:
        backend.close()


def test_redis_default_socket_timeout_is_celerys(redis_url: str) -> None:
    from celeriac import Celery

    app = Celery("t", broker=redis_url, backend=redis_url)
    try:
        for client in (app.backend.client, app.broker.client):  # type: ignore[attr-defined]
            assert client.connection_pool.connection_kwargs["socket_timeout"] == 120.0
        app.conf.redis_socket_timeout = 30
        assert app.new_backend().client.connection_pool.connection_kwargs["socket_timeout"] == 30  # type: ignore[attr-defined]
    finally:
        app.close()
