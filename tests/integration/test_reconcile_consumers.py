"""A pool process's own reconcile, with the real consumer (prefork's and asyncio's) in a process
of its own against the tests' redis-server: the broker leases it a message it does not hold (the
state a lost ack leaves), the supervisor's broker word moves, and the process gives that message
back at its next fetch, without giving back what it runs (no duplicate) or waiting for it."""

from __future__ import annotations

import os
import signal
import time

import pytest
from consumer_support import fork_consumer

from celeriac.testing import wait_until
from celeriac.worker.async_consumer import AsyncConsumer
from celeriac.worker.consumer import Consumer
from celeriac.worker.slots import Slots
from conftest import read_marks

INCARNATION = "reconcile@test#1"


def _tags(marks, name: str) -> list[str]:
    return [line.split()[0] for line in read_marks(marks, name)]


def _fork(app, slots: Slots, pool: str) -> tuple[int, int]:
    """A child that runs one pool process's consumer, as a pool would, once told to (a byte on
    the returned pipe): until then the parent may lease messages to its consumer name."""
    options = {"hostname": "reconcile@test", "index": 0, "queues": ["celery"], "prefetch": 1,
               "incarnation": INCARNATION, "slots": slots}
    return fork_consumer(app, lambda: AsyncConsumer(app, width=2, **options) if pool == "asyncio"
                         else Consumer(app, **options))


@pytest.mark.parametrize("pool", ["prefork", "asyncio"])
def test_a_pool_process_gives_back_what_it_does_not_hold_when_the_broker_word_moves(app, marks, pool) -> None:
    import coreapp

    slots = Slots(4)
    pid, go = _fork(app, slots, pool)
    try:
        orphan = coreapp.sleep.delay(0.1, "orphan")
        broker = app.new_broker()
        try:  # what a lost ack leaves: leased to the process, which does not hold it
            [leased] = broker.fetch(["celery"], f"{INCARNATION}/{pid}-0", 1, 1.0)
        finally:
            broker.close()
        running = coreapp.sleep.delay(3.0, "running")
        os.write(go, b"x")
        os.close(go)
        wait_until(lambda: "running" in _tags(marks, "started"), 20, message="the long task started")
        assert leased.body and "orphan" not in _tags(marks, "started")
        time.sleep(1.0)  # without a broker change nothing is reconciled: the orphan waits
        assert "orphan" not in _tags(marks, "started")
        slots.broker_changed()
        assert orphan.get(timeout=20) == "orphan"
        if pool == "asyncio":  # given back beside the running task, not after it
            assert "running" not in _tags(marks, "finished")
        assert running.get(timeout=20) == "running"
        assert _tags(marks, "started").count("running") == 1  # what it ran was kept, not given back
        assert _tags(marks, "started").count("orphan") == 1
    finally:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
