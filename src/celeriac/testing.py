"""Helpers for users' own tests: run a worker for a test, wait for tasks, feed raw bytes.

    from celeriac.testing import start_worker

    def test_sends_email(app):
        with start_worker(app):
            assert send_email.delay("a@b.c").get(timeout=10) == "sent"

``start_worker`` runs a threads-pool worker inside the test process (fast, shares the test's
imports, works with ``memory://``) or, with ``subprocess=True``, the real ``celeriac worker``
command (prefork, time limits, kill -9: what production runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .app import Celery
    from .result import AsyncResult


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    """Call ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout}s")
        time.sleep(interval)


R = TypeVar("R")


def wait_for(result: AsyncResult[R], timeout: float = 10.0, propagate: bool = True) -> R:
    """Wait for one task's result (woken by the store's notification)."""
    return result.get(timeout=timeout, propagate=propagate)


def push_raw(broker_url: str, queue: str, payload: bytes, *, priority: int = 0, **options: Any) -> None:
    """Put ``payload`` into ``queue`` exactly as the broker stores messages, bypassing every
    check, to see how workers treat bad input. ``options`` go to the broker (for a
    ``sentinel://`` URL: ``transport_options={'master_name': ...}``)."""
    from .engines import open_broker

    broker = open_broker(broker_url, **options)
    try:
        broker.enqueue(queue, payload, priority=priority)
    finally:
        broker.close()


@contextlib.contextmanager
def start_worker(app: Celery, *, queues: Sequence[str] | None = None, concurrency: int = 1,
                 hostname: str | None = None, prefetch_multiplier: int | None = None,
                 shutdown_timeout: float = 10.0, quiet: bool = True) -> Iterator[Any]:
    """Run a threads-pool worker for ``app`` inside this process for the ``with`` block
    (``quiet=False``: with the worker's logging)."""
    from .worker import Worker

    app.conf.worker_shutdown_timeout = shutdown_timeout
    worker = Worker(app, hostname=hostname or f"test-{os.getpid()}-{time.monotonic_ns()}@localhost",
                    concurrency=concurrency, queues=list(queues) if queues else None, pool="threads",
                    prefetch_multiplier=prefetch_multiplier, quiet=quiet)
    supervisor = worker.prepare()
    thread = threading.Thread(target=supervisor.run, kwargs={"install_signals": False}, daemon=True,
                              name="celeriac-test-worker")
    thread.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
        thread.join(shutdown_timeout + 5)


@dataclass
class WorkerProcess:
    """A real ``celeriac worker`` started as a subprocess; stop it with ``stop()`` or ``kill()``."""

    args: list[str]
    env: dict[str, str]
    log_path: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _terminating: bool = field(default=False, repr=False)

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "celeriac", *self.args], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not isinstance(log, int):  # subprocess.DEVNULL is an int
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout: float = 20.0) -> WorkerProcess:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout, message="worker ready")
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """Warm shutdown (SIGTERM); kill -9 if it does not exit within ``timeout``."""
        assert self.proc is not None
        if self.proc.poll() is None:
            if not self._terminating:  # a second SIGTERM would turn a warm shutdown cold
                self._terminating = True
                self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def worker_process(app_spec: str, *args: str, broker_url: str | None = None, env: dict[str, str] | None = None,
                   log_path: str | None = None, pythonpath: Sequence[str] = ()) -> WorkerProcess:
    """Start ``celeriac -A app_spec worker *args`` (logs at info unless -l given) and return it."""
    full_env = dict(os.environ)
    if broker_url:
        full_env["CELERIAC_BROKER_URL"] = broker_url
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join([*pythonpath, full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    cli_args = ["-A", app_spec, "worker", *args]
    if "-l" not in args and "--loglevel" not in args:
        cli_args += ["-l", "info"]
    return WorkerProcess(cli_args, full_env, log_path).start()
