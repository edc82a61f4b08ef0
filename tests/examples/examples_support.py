"""Helpers for the seed examples' tests (``examples/<name>/``); fixtures are in conftest.py.

Each test runs one example the way its README does: real ``celeriac -A ... worker`` (and
``beat``) processes started from the example's directory, and the example's own modules
(FastAPI apps, clients) imported into the test process, all on one temporary SQLite file.

The examples' package names overlap (two of them have a top-level ``app`` package, as their
seed projects do), so every module a test imported from an example is dropped again afterwards,
and the Celery apps those modules made are closed first: they hold SQLite connections, and
an unclosed one is a ResourceWarning, an error in this suite.

(A module of its own, not conftest.py: the suite has several conftest modules on sys.path.)
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import celeriac.app as celeriac_app
from celeriac import Celery
from celeriac.testing import WorkerProcess, wait_until, worker_process

with warnings.catch_warnings():
    # Starlette >= 1.x asks for the `httpx2` package and warns when it falls back to `httpx`
    # (what the dev extra installs); the fallback works, and the warning is not ours to fix here.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: Test-only app modules (a beat with a faster interval, a settings variant) live here.
TEST_APPS = Path(__file__).resolve().parent / "apps"

#: Variables the examples read for their broker: unset by the broker_url fixture, so nothing but
#: CELERIAC_BROKER_URL (the test's own SQLite file) decides where they connect.
BROKER_ENV = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERIAC_RESULT_BACKEND")

__all__ = ["EXAMPLES", "TEST_APPS", "Example", "TestClient", "poll"]


class Example:
    """One example under test: its directory, its broker, and the processes started for it."""

    def __init__(self, name: str, broker_url: str, tmp_path: Path, importable: str) -> None:
        self.name = name
        self.dir = EXAMPLES / name
        self.broker_url = broker_url
        self.tmp_path = tmp_path
        self.env: dict[str, str] = {}  # extra environment for every process started
        self.processes: list[WorkerProcess] = []
        self._modules_before = set(sys.modules)
        self._path_before = list(sys.path)
        self._current_before = celeriac_app._current
        self._shared_before = list(celeriac_app._shared_tasks)
        sys.path[:0] = [str(self.dir / importable), str(TEST_APPS)]

    # -- the test process side -------------------------------------------------------------
    def import_(self, module: str) -> ModuleType:
        """Import one of the example's modules into the test process."""
        return importlib.import_module(module)

    # -- processes ---------------------------------------------------------------------------
    def _paths(self, where: str) -> list[str]:
        # A process imports from where its README says to run it, plus the test-only apps.
        return [str(self.dir / where), str(TEST_APPS)]

    def _env(self, where: str, env: dict[str, str] | None) -> dict[str, str]:
        path = os.pathsep.join([*self._paths(where), os.environ.get("PYTHONPATH", "")])
        return {**os.environ, "CELERIAC_BROKER_URL": self.broker_url, "PYTHONPATH": path, **self.env,
                **(env or {})}

    def worker(self, app_spec: str, *args: str, env: dict[str, str] | None = None, name: str | None = None,
               where: str = ".", ready: bool = True) -> WorkerProcess:
        """``celeriac -A app_spec worker *args`` run from ``where`` in the example, as its README says."""
        name = name or f"w{len(self.processes) + 1}"
        if "-n" not in args and "--hostname" not in args:
            args = ("-n", f"{name}@%h", *args)
        proc = worker_process(app_spec, *args, broker_url=self.broker_url, env={**self.env, **(env or {})},
                              log_path=str(self.tmp_path / f"{name}.log"), pythonpath=self._paths(where))
        self.processes.append(proc)
        return proc.wait_ready(30) if ready else proc

    def beat(self, app_spec: str, *args: str, env: dict[str, str] | None = None, where: str = ".") -> WorkerProcess:
        """``celeriac -A app_spec beat``; stopped at teardown like a worker (SIGTERM)."""
        name = f"beat{len(self.processes) + 1}"
        proc = WorkerProcess(["-A", app_spec, "beat", "-l", "info", *args], self._env(where, env),
                             str(self.tmp_path / f"{name}.log")).start()
        self.processes.append(proc)
        return proc

    def cli(self, app_spec: str, *args: str, where: str = ".", timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``celeriac -A app_spec *args`` to completion (inspect, beat --list, ...)."""
        return subprocess.run([sys.executable, "-m", "celeriac", "-A", app_spec, *args], env=self._env(where, None),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)

    def logs(self) -> str:
        return "\n".join(f"--- {' '.join(p.args)}\n{p.log()[-4000:]}" for p in self.processes)

    # -- teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        try:
            for proc in self.processes:
                if proc.proc is not None and proc.proc.poll() is None:
                    proc.stop(timeout=15)
        finally:
            if os.environ.get("CELERIAC_TEST_SHOW_LOGS"):
                print(self.logs())
            self._forget_modules()

    def _forget_modules(self) -> None:
        roots = (os.path.realpath(self.dir) + os.sep, os.path.realpath(TEST_APPS) + os.sep)
        ours = [name for name, module in list(sys.modules.items())
                if name not in self._modules_before and _file_under(module, roots)]
        closed: set[int] = set()
        for name in ours:
            for value in list(vars(sys.modules[name]).values()):
                if isinstance(value, Celery) and id(value) not in closed:
                    closed.add(id(value))
                    value.close()
        for name in ours:
            del sys.modules[name]
        sys.path[:] = self._path_before
        # The examples' Celery() calls made themselves current and their @shared_task modules
        # registered factories; put both back so later tests' apps are not touched.
        celeriac_app._current = self._current_before
        celeriac_app._shared_tasks[:] = self._shared_before


def _file_under(module: Any, roots: tuple[str, ...]) -> bool:
    path = getattr(module, "__file__", None)
    if path is None:  # a namespace package: look at where it lives
        locations = list(getattr(module, "__path__", []) or [])
        return any(os.path.realpath(p).startswith(roots) for p in locations)
    return os.path.realpath(path).startswith(roots)


def poll(fetch: Callable[[], Any], until: Callable[[Any], bool], timeout: float = 20.0,
         interval: float = 0.02) -> list[Any]:
    """Call ``fetch`` until ``until(value)`` holds; return every distinct value seen, in order."""
    seen: list[Any] = []

    def step() -> bool:
        value = fetch()
        if not seen or seen[-1] != value:
            seen.append(value)
        return until(value)

    try:
        wait_until(step, timeout, interval)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout}s; last values seen: {seen[-5:]}") from None
    return seen
