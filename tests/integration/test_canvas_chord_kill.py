"""Chords that never hang or fire twice: a worker killed with SIGKILL in the middle of a chord's
header, and a header task delivered twice, both end in exactly one call of the body (the body
writes one ledger line per run), on Redis and SQLite with real worker processes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from celeriac import chord
from celeriac.testing import WorkerProcess, wait_until, worker_process

APPS = str(Path(__file__).parent.parent / "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)

import canvasapp  # noqa: E402
from canvasapp import ledger, slow  # noqa: E402


def lines(marks: Path, name: str) -> list[str]:
    path = marks / name
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(params=["redis", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = str(request.getfixturevalue("redis_url")) if request.param == "redis" else \
        f"sqlite:///{tmp_path / 'broker.db'}"
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    monkeypatch.setenv("CELERIAC_RESULT_BACKEND", url)
    app = canvasapp.app
    app.conf.broker_url = url
    app.conf.result_backend = url
    app._reset_connections()
    yield url
    app.close()


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    directory = tmp_path / "marks"
    directory.mkdir()
    return directory


@pytest.fixture
def workers(url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[[str], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        # prefetch 1: each pool process takes one message at a time, so a duplicate runs while
        # another header task is still running, not queued behind it in one process
        proc = worker_process("canvasapp", "-c", "2", "--prefetch-multiplier", "1", "-n", f"{name}@%h",
                              broker_url=url,
                              env={"CELERIAC_TEST_DIR": str(marks), "CELERIAC_RESULT_BACKEND": url,
                                   "CELERIAC_TEST_LEASE": "2"},
                              log_path=str(tmp_path / f"{name}.log"), pythonpath=[APPS])
        started.append(proc)
        return proc.wait_ready()

    yield start
    for proc in started:
        proc.kill()


def test_kill_9_during_the_header_ends_in_exactly_one_callback(workers: Callable[[str], WorkerProcess],
                                                               marks: Path) -> None:
    victim = workers("victim")
    workers("survivor")
    result = chord(slow.s(i, 1.5) for i in range(6))(ledger.s("killed"))
    wait_until(lambda: len(lines(marks, "slow-started")) >= 4, timeout=20)  # both workers busy
    victim.kill()
    assert result.get(timeout=60) == [0, 1, 2, 3, 4, 5]
    time.sleep(3)  # a second call of the body would land by now
    assert lines(marks, "ledger") == ["killed [0, 1, 2, 3, 4, 5]"]
    assert len(lines(marks, "slow-started")) > 6  # the killed worker's header tasks ran again


def test_a_header_task_delivered_twice_is_counted_once(url: str, workers: Callable[[str], WorkerProcess],
                                                       marks: Path) -> None:
    """The same header message run twice (as after a redelivery) must neither complete the chord
    early, while another member still runs, nor call the body a second time."""
    app = canvasapp.app
    result = chord([slow.s(0, 0.0), slow.s(1, 3.0)], ledger.s("dup")).apply_async()
    queue = app.default_queue
    held = app.broker.fetch([queue], "test/dup", 10, 1.0)
    assert len(held) == 2
    fast = next(d for d in held if b'"args":[0,' in d.body)
    app.broker.enqueue(queue, fast.body)  # the duplicate delivery
    app.broker.requeue(held)
    workers("w1")
    assert result.get(timeout=40) == [0, 1]
    time.sleep(2)
    assert lines(marks, "ledger") == ["dup [0, 1]"]
    assert sorted(line.split()[0] for line in lines(marks, "slow-started")) == ["0", "0", "1"]
