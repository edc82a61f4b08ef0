"""-P asyncio: the broker writes a task makes before it runs (STARTED with track_started, the
early ack of acks_late=False) go to the sync-task executor, never block the event loop, and
keep their order: the task runs only once they are written. Shown with the real asyncio
consumer in a process of its own while the tests' redis-server holds every write (CLIENT
PAUSE WRITE): another task's coroutine, ticking every 50 ms, must go on ticking."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest
import redis
from consumer_support import fork_consumer

from celeriac import states
from celeriac.testing import wait_until
from celeriac.worker.async_consumer import AsyncConsumer
from celeriac.worker.slots import Slots
from conftest import read_marks

PAUSE = 3.0  # seconds the broker holds writes


def _fork(app, slots: Slots) -> tuple[int, int]:
    # Two slots; it leases three messages at once (free slots + prefetch), so the third starts
    # with no fetch (a write) before it.
    return fork_consumer(app, lambda: AsyncConsumer(app, width=2, hostname="aio@test", index=0, queues=["celery"],
                                                    prefetch=1, incarnation="aio@test#1", slots=slots))


def _ticks(marks) -> list[float]:
    return [float(line) for line in read_marks(marks, "tick")]


@pytest.mark.parametrize("kind", ["acks_late=False", "track_started"])
def test_start_writes_do_not_block_the_event_loop(app, marks, broker_url, kind) -> None:
    import coreapp

    slots = Slots(2)
    client = redis.Redis.from_url(broker_url)
    ticking = coreapp.ticker.delay(PAUSE + 2.0)
    coreapp.sleep.delay(0.5, "blocker")  # holds the second slot until the broker is paused
    writer = coreapp.early_acked.delay("early") if kind == "acks_late=False" else coreapp.tracked.delay(0.0)
    pid, go = _fork(app, slots)
    try:
        os.write(go, b"x")
        os.close(go)
        wait_until(lambda: any(line.startswith("blocker") for line in read_marks(marks, "started")), 20,
                   message="the blocker started")
        client.execute_command("CLIENT", "PAUSE", int(PAUSE * 1000), "WRITE")
        paused_at = time.monotonic()
        try:
            # The blocker ends within 0.5 s; the writer then starts and its write waits out the pause.
            wait_until(lambda: any(line.startswith("blocker") for line in read_marks(marks, "finished")), PAUSE,
                       message="the blocker finished")
            time.sleep(max(0.0, paused_at + PAUSE - 0.5 - time.monotonic()))
            if kind == "acks_late=False":
                assert read_marks(marks, "early") == []  # not run before its ack is written
            # From the pause until now: a loop blocked on the write leaves a gap at the end.
            ticks = [paused_at, *(t for t in _ticks(marks) if t >= paused_at), time.monotonic()]
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert max(gaps) < 1.0, f"the event loop stalled: longest gap {max(gaps):.2f}s"
        assert writer.get(timeout=20) in ("early", "tracked")
        assert writer.state == states.SUCCESS
        assert ticking.get(timeout=20) == "ticked"
    finally:
        client.close()
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
