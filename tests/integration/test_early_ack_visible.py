"""An acks_late=False task is acked just before it runs: from then on only its slot shows it
(``inspect active``, the supervisor's view of a process that dies). The slot is written before
the ack, so the task is never in neither. Shown with the real consumer (prefork's and asyncio's)
in a process of its own, while the tests' redis-server holds every write (CLIENT PAUSE WRITE):
the early ack waits, and the slot must already name the task meanwhile."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis
from consumer_support import fork_consumer

from celeriac.testing import wait_until
from celeriac.worker.async_consumer import AsyncConsumer
from celeriac.worker.consumer import Consumer
from celeriac.worker.slots import Slots
from conftest import read_marks
from redis_server import RedisServer, start_redis

PAUSE = 4.0  # seconds the broker holds writes; the slot must show the task well before


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own: one test kills it."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_url(own_redis: RedisServer) -> str:
    return own_redis.url


def _fork(app, slots: Slots, pool: str) -> tuple[int, int]:
    """A child running one pool process's consumer once told to (a byte on the pipe). It leases
    two messages per fetch, so the second starts with no fetch (a write) before it."""
    options = {"hostname": "early@test", "index": 0, "queues": ["celery"], "incarnation": "early@test#1",
               "slots": slots}
    return fork_consumer(app, lambda: AsyncConsumer(app, width=1, prefetch=1, **options) if pool == "asyncio"
                         else Consumer(app, prefetch=2, **options))


def _in_slots(slots: Slots, task_id: str) -> bool:
    return any((running := slots.read(i)) is not None and running.info.get("id") == task_id for i in range(2))


@pytest.mark.parametrize("pool", ["prefork", "asyncio"])
def test_an_early_acked_task_is_in_its_slot_before_its_ack(app, marks, broker_url, pool) -> None:
    import coreapp

    slots = Slots(2)
    client = redis.Redis.from_url(broker_url)
    first = coreapp.sleep.delay(0.5, "first")
    early = coreapp.early_acked.delay("early")
    pid, go = _fork(app, slots, pool)
    try:
        os.write(go, b"x")
        os.close(go)
        wait_until(lambda: any(line.startswith("first") for line in read_marks(marks, "started")), 20,
                   message="the first task started")
        client.execute_command("CLIENT", "PAUSE", int(PAUSE * 1000), "WRITE")
        paused_at = time.monotonic()
        try:
            wait_until(lambda: _in_slots(slots, early.id), PAUSE, interval=0.005,
                       message="the early-acked task in its slot")
            assert time.monotonic() - paused_at < PAUSE - 1.0, "the slot was written only after the ack"
            assert read_marks(marks, "early") == []  # acked first, then run: it waits for its ack
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
        assert first.get(timeout=20) == "first"
        assert early.get(timeout=20) == "early"
        assert read_marks(marks, "early") == ["early"]
    finally:
        client.close()
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("pool", ["prefork", "asyncio"])
def test_a_failed_early_ack_clears_the_slot_and_the_task_runs_once_later(app, marks, own_redis, pool) -> None:
    """The broker dies while the early ack waits: the task has not started, so its slot is
    cleared (a supervisor would otherwise see a running task: a hard limit, a lost task), and
    its message, still leased, goes back to the queue once the broker is back."""
    import coreapp

    slots = Slots(2)
    client = redis.Redis.from_url(own_redis.url)
    coreapp.sleep.delay(0.5, "first")
    early = coreapp.early_acked.delay("early")
    pid, go = _fork(app, slots, pool)
    try:
        os.write(go, b"x")
        os.close(go)
        wait_until(lambda: any(line.startswith("first") for line in read_marks(marks, "started")), 20,
                   message="the first task started")
        client.execute_command("CLIENT", "PAUSE", int(PAUSE * 1000), "WRITE")
        wait_until(lambda: _in_slots(slots, early.id), PAUSE, interval=0.005,
                   message="the early-acked task in its slot")
        own_redis.kill()  # what the append-only file holds survives: the enqueues and the leases
        wait_until(lambda: not _in_slots(slots, early.id), 10, message="the slot cleared after the failed ack")
        assert read_marks(marks, "early") == []
        own_redis.restart()
        assert early.get(timeout=30) == "early"
        assert read_marks(marks, "early") == ["early"]
    finally:
        client.close()
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_asyncio_terminate_while_the_early_ack_waits_records_it_revoked(app, marks, broker_url) -> None:
    """revoke(terminate=True) reaches a task whose early ack is still being written (off the
    event loop): it never runs, and it is recorded REVOKED (terminated)."""
    import coreapp

    slots = Slots(2)
    client = redis.Redis.from_url(broker_url)
    coreapp.sleep.delay(0.5, "first")
    early = coreapp.early_acked.delay("early")
    pid, go = _fork(app, slots, "asyncio")
    try:
        os.write(go, b"x")
        os.close(go)
        wait_until(lambda: any(line.startswith("first") for line in read_marks(marks, "started")), 20,
                   message="the first task started")
        client.execute_command("CLIENT", "PAUSE", int(PAUSE * 1000), "WRITE")
        try:
            wait_until(lambda: _in_slots(slots, early.id), PAUSE, interval=0.005,
                       message="the early-acked task in its slot")
            slots.flag_terminate(0, True)  # what the supervisor does for revoke(terminate=True)
            wait_until(lambda: not _in_slots(slots, early.id), PAUSE - 1.0, message="its slot cleared")
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
        wait_until(lambda: early.state == "REVOKED", 10, message="recorded revoked")
        assert not slots.terminating(0)
        time.sleep(0.5)
        assert read_marks(marks, "early") == []
    finally:
        client.close()
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
