"""The threads and solo pools run the same tasks through the same consumer."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_pool_runs_tasks_retries_and_failures(app, start_worker, pool):
    import coreapp

    worker = start_worker("-P", pool, "-c", "3")
    assert [coreapp.add.delay(i, 1).get(timeout=10) for i in range(5)] == [1, 2, 3, 4, 5]
    assert coreapp.flaky.delay(1).get(timeout=10) == 1
    with pytest.raises(ValueError):
        coreapp.fail.delay("x").get(timeout=10)
    pids = {coreapp.pid.delay().get(timeout=10) for _ in range(5)}
    assert pids == {worker.pid}  # no pool processes: tasks run in the worker process itself
    assert f"({pool})" in worker.log()
