"""Real workers, started through the CLI, against the session's own redis-server."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from celeriac.testing import WorkerProcess, worker_process
from redis_server import SentinelSetup, start_sentinel_setup

APPS = str(Path(__file__).parent.parent / "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)

import coreapp  # noqa: E402


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    directory = tmp_path / "marks"
    directory.mkdir()
    return directory


def read_marks(marks: Path, name: str) -> list[str]:
    path = marks / name
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """The broker the integration tests run on; a module overrides this to run on SQLite."""
    return redis_url


@pytest.fixture
def app(broker_url: str, marks: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """coreapp's app pointed at the test broker, with test settings exported for workers."""
    monkeypatch.setenv("CELERIAC_BROKER_URL", broker_url)
    monkeypatch.setenv("CELERIAC_TEST_DIR", str(marks))
    coreapp.app.conf.broker_url = broker_url
    coreapp.app._reset_connections()
    yield coreapp.app
    coreapp.app.close()


@pytest.fixture
def start_worker(broker_url: str, marks: Path, tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``celeriac -A coreapp worker`` with extra args; every one is stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True,
              name: str | None = None, app_spec: str = "coreapp") -> WorkerProcess:
        name = name or f"w{len(started) + 1}"
        full_env = {"CELERIAC_TEST_DIR": str(marks), **(env or {})}
        proc = worker_process(app_spec, "-n", f"{name}@%h", *args, broker_url=broker_url, env=full_env,
                              log_path=str(tmp_path / f"{name}.log"), pythonpath=[APPS])
        started.append(proc)
        return proc.wait_ready() if ready else proc

    yield start
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for proc in started:
        if failed or os.environ.get("CELERIAC_TEST_SHOW_LOGS"):
            print(f"----- log of worker {' '.join(proc.args)} -----\n{proc.log()[-6000:]}")


@pytest.fixture
def sentinels() -> Iterator[SentinelSetup]:
    """A Sentinel set-up of the test's own (master, replica, three Sentinels), for tests that
    kill its master: failover within a few seconds."""
    setup = start_sentinel_setup(down_after_ms=1000, failover_timeout_ms=3000)
    yield setup
    setup.stop()
