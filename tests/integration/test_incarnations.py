"""Promises 1-3 in the shapes production breaks them (issue 10): a worker restarted under its
own name, a worker paused past its lease, a broker stalled past the lease. Real workers
started through the CLI, on Redis and on SQLite."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from celeriac.testing import wait_until
from conftest import read_marks


@pytest.fixture(params=["redis", "sqlite"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    return str(request.getfixturevalue("redis_url"))


def started_tags(marks: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in read_marks(marks, "started"))


def kill_tree(pid: int) -> None:
    """kill -9 the supervisor; its pool processes die with it (PR_SET_PDEATHSIG)."""
    children = [p.pid for p in psutil.Process(pid).children()]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(psutil.pid_exists(c) and psutil.Process(c).status() != "zombie"
                               for c in children), 5, message="pool processes died with their supervisor")


def test_a_worker_restarted_under_its_own_name_gets_its_tasks_back_at_once(app, start_worker, marks):
    """systemd/Docker restart a killed worker as the same name: the restart is not refused, and
    the dead process's tasks come back at once (not after the 30 s lease), the running ones
    charged, the prefetched ones not: with task_max_redeliveries=0 only what was running when
    the worker died is dead-lettered; everything else completes."""
    import coreapp

    env = {"CELERIAC_TEST_LEASE": "30", "CELERIAC_TEST_MAX_REDELIVERIES": "0"}
    first = start_worker("-c", "2", "--prefetch-multiplier", "4", env=env, name="same")
    results = [coreapp.sleep.delay(1.5, f"t{i}") for i in range(16)]
    wait_until(lambda: len(read_marks(marks, "started")) >= 2, 20, message="two tasks running")
    time.sleep(1.2)  # a heartbeat reports them running
    running = set(started_tags(marks))
    kill_tree(first.pid)
    killed_at = time.monotonic()
    start_worker("-c", "2", env=env, name="same")
    outcomes = {}
    for i, r in enumerate(results):
        try:
            outcomes[f"t{i}"] = r.get(timeout=40)
        except Exception as exc:
            outcomes[f"t{i}"] = type(exc).__name__
    assert time.monotonic() - killed_at < 25, "waited out the lease instead of evicting the predecessor"
    failed = {tag for tag, out in outcomes.items() if out != tag}
    assert failed <= running, f"prefetched tasks were charged for the death: {failed - running}"
    assert all(outcomes[tag] == tag for tag in outcomes if tag not in running)
    assert len(failed) >= 1, "a task running at the kill should have been charged (cap 0)"


def test_a_worker_paused_past_its_lease_neither_starts_nor_overwrites_what_went_elsewhere(
        app, start_worker, marks):
    """A worker SIGSTOPped past its lease (a VM pause, swapping) whose tasks were recovered by
    another worker resumes: it starts none of its prefetched tasks, the task it was running
    ends without replacing the other worker's result, and it says what happened."""
    import coreapp

    env = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}
    zombie = start_worker("-c", "1", "--prefetch-multiplier", "4", env=env, name="zombie")
    results = [coreapp.whoami.delay(2.5 if i == 0 else 0.2, f"t{i}") for i in range(4)]
    wait_until(lambda: started_tags(marks)["t0"] == 1, 20, message="t0 running on the zombie")
    group = [zombie.pid, *(p.pid for p in psutil.Process(zombie.pid).children())]
    for pid in group:
        os.kill(pid, signal.SIGSTOP)
    try:
        start_worker("-c", "1", env=env, name="rescuer")
        wait_until(lambda: all(r.ready() for r in results), 30, message="the rescuer ran everything")
    finally:
        for pid in group:
            os.kill(pid, signal.SIGCONT)
    time.sleep(4)  # the zombie wakes, finishes t0, and would start t1..t3
    # Fresh handles: a handle that saw a ready state keeps it, so only a new read sees an overwrite.
    hosts = {app.AsyncResult(r.id).get(timeout=5) for r in results}
    assert all(h.startswith("rescuer@") for h in hosts), hosts
    counts = started_tags(marks)
    assert counts["t0"] == 2  # running in the paused process: the one duplicate allowed
    assert all(counts[f"t{i}"] == 1 for i in range(1, 4)), counts
    log = zombie.log()
    assert "missed its lease" in log
    assert "Discarded the result of task" in log


def test_a_restarted_worker_is_listed_once(app, start_worker):
    """To the people watching, a restart is one worker: the registry shows the live
    incarnation, not its dead predecessor beside it."""
    first = start_worker("-c", "1", name="listed")
    kill_tree(first.pid)
    start_worker("-c", "1", name="listed")
    listed = [w for w in app.control.workers() if w["hostname"].startswith("listed@")]
    assert [w["alive"] for w in listed] == [True]


def test_leases_in_a_cancelled_queue_still_come_back_when_the_worker_dies(app, start_worker, marks):
    """Issue 10, finding 15: cancel_consumer removed a queue from what the worker reported, so
    a task it was still running there was never recovered after a kill -9."""
    import coreapp

    env = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}
    worker = start_worker("-c", "1", "-Q", "celery,side", env=env, name="canceller")
    result = coreapp.sleep.apply_async((3, "on-side"), queue="side")
    wait_until(lambda: started_tags(marks)["on-side"] == 1, 15, message="running on the side queue")
    app.control.cancel_consumer("side", reply=True, timeout=5)
    time.sleep(1.5)  # heartbeats after the cancel
    kill_tree(worker.pid)
    start_worker("-c", "1", "-Q", "side", env=env, name="rescuer")
    assert result.get(timeout=30) == "on-side"
    assert started_tags(marks)["on-side"] == 2
