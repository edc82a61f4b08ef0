"""celeriac.contrib.abortable across processes: the caller's abort() reaches a task running in a
real worker (started through the CLI), which notices it and returns early."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.contrib.abortable import ABORTED, AbortableAsyncResult
from celeriac.testing import wait_until, worker_process

APPS = str(Path(__file__).parent.parent / "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)

import abortapp  # noqa: E402


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[None]:
    url = f"sqlite:///{tmp_path / 'abort.db'}"
    abortapp.app.conf.broker_url = url
    abortapp.app.conf.result_backend = url
    abortapp.app._reset_connections()
    proc = worker_process("abortapp", "-c", "1", "-n", "abort@%h", broker_url=url,
                          env={"CELERIAC_RESULT_BACKEND": url}, log_path=str(tmp_path / "worker.log"),
                          pythonpath=[APPS])
    try:
        proc.wait_ready()
        yield
    finally:
        proc.kill()
        abortapp.app.close()


def test_abort_stops_a_running_task_that_checks(worker: None) -> None:
    result = abortapp.crawl.delay(200, 0.05)
    assert isinstance(result, AbortableAsyncResult)
    wait_until(lambda: result.state == "STARTED" or _started(result), timeout=20)
    assert not result.is_aborted()
    result.abort()
    assert result.is_aborted() and result.state == ABORTED
    outcome = result.get(timeout=20)
    assert outcome.startswith("aborted after ")
    assert 0 <= int(outcome.rsplit(" ", 1)[1]) < 200  # 0: aborted before its first step


def test_a_task_not_aborted_runs_to_its_end(worker: None) -> None:
    result = abortapp.crawl.delay(3, 0.01)
    assert result.get(timeout=20) == "all 3"
    assert not result.is_aborted()


def _started(result: AbortableAsyncResult) -> bool:
    """The worker's active list names the task: it is running (track_started is off)."""
    replies = abortapp.app.control.inspect(timeout=1.0).active() or {}
    return any(t["id"] == result.id for tasks in replies.values() for t in tasks)
