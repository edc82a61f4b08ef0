"""The embedded default under real workers: the same promises as on Redis, on one SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from celeriac import states
from celeriac.exceptions import RemoteTaskError
from celeriac.testing import wait_until
from conftest import read_marks

FAST_LEASE = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/broker.db"


def test_tasks_run_and_results_come_back(app, start_worker):
    import coreapp

    start_worker("-c", "2")
    results = [coreapp.add.delay(i, i) for i in range(50)]
    assert [r.get(timeout=20) for r in results] == [2 * i for i in range(50)]
    assert coreapp.flaky.delay(1).get(timeout=20) == 1


def test_worker_killed_mid_task_loses_nothing(app, start_worker, marks):
    """Two workers, one SIGKILLed mid-task: every task still completes, the lost one elsewhere."""
    import coreapp

    app.conf.broker_lease_seconds = 2
    victim = start_worker("-c", "2", env=FAST_LEASE, name="victim")
    results = [coreapp.sleep.delay(0.3, f"t{i}") for i in range(12)]
    wait_until(lambda: len(read_marks(marks, "finished")) >= 2, 20, message="some tasks done")
    children = [p.pid for p in psutil.Process(victim.pid).children()]
    victim.kill()
    wait_until(lambda: not any(psutil.pid_exists(c) and psutil.Process(c).status() != "zombie"
                               for c in children), 5)
    start_worker("-c", "2", env=FAST_LEASE, name="rescuer")
    assert [r.get(timeout=30) for r in results] == [f"t{i}" for i in range(12)]
    assert {line.split()[0] for line in read_marks(marks, "finished")} == {f"t{i}" for i in range(12)}


def test_long_task_not_redelivered_while_its_worker_lives(app, start_worker, marks):
    import coreapp

    env = {"CELERIAC_TEST_LEASE": "1", "CELERIAC_TEST_HEARTBEAT": "0.25"}
    start_worker("-c", "1", env=env, name="busy")
    result = coreapp.sleep.delay(3.5, "long")
    wait_until(lambda: read_marks(marks, "started"), 10)
    start_worker("-c", "1", env=env, name="idle")
    assert result.get(timeout=20) == "long"
    assert len(read_marks(marks, "started")) == 1


def test_delayed_priority_and_rate_limit(app, start_worker, marks):
    import coreapp

    for i in range(10):
        coreapp.sleep.apply_async((0.02, f"low{i}"), priority=0)
    coreapp.sleep.apply_async((0, "HIGH"), priority=9)
    due = coreapp.record.apply_async(("due",), countdown=1.0)
    sent = time.time()
    start_worker("-c", "1", "--prefetch-multiplier", "1")
    assert due.get(timeout=15) == "due"
    started = float(read_marks(marks, "record")[0].split()[2])
    assert started - sent >= 1.0
    order = [line.split()[0] for line in read_marks(marks, "started")]
    assert order[0] == "HIGH", order
    results = [coreapp.limited.delay(i) for i in range(12)]
    assert sorted(r.get(timeout=20) for r in results) == list(range(12))
    times = sorted(float(line.split()[1]) for line in read_marks(marks, "limited"))
    assert times[-1] - times[0] >= 1.0  # 10/s: 12 starts need at least 1.1 s


def test_poison_and_bad_input(app, start_worker, broker_url):
    import coreapp

    from celeriac.testing import push_raw

    worker = start_worker("-c", "1")
    push_raw(broker_url, "celery", b"not json")
    poisoned = coreapp.poison.delay()
    assert coreapp.add.delay(1, 1).get(timeout=20) == 2
    with pytest.raises(RemoteTaskError, match="poison"):
        poisoned.get(timeout=30)
    assert worker.proc.poll() is None
    assert len(app.broker.dead_letters("celery")) == 2
    assert poisoned.state == states.FAILURE
