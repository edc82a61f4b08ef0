"""Processes the battery starts (workers, beats, through their real CLIs) and the faults it
inflicts on them: kill -9 and SIGSTOP/SIGCONT of the whole process group, by PID only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

TESTS = str(Path(__file__).resolve().parent.parent)


class Proc:
    """One command in a session of its own, so a signal reaches it and all its pool processes,
    as a container runtime's or systemd's kill does."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.cmd, self.env, self.log_path = cmd, env, log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> Proc:
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(self.cmd, env=self.env, cwd=TESTS, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def pids(self) -> frozenset[int]:
        """The process and its descendants now."""
        try:
            proc = psutil.Process(self.pid)
            return frozenset([self.pid, *(c.pid for c in proc.children(recursive=True))])
        except psutil.NoSuchProcess:
            return frozenset()

    def wait_ready(self, timeout: float, marker: str = " ready.") -> bool:
        """True once the log says ready; False if the process exited first or time ran out."""
        deadline = time.monotonic() + timeout
        seen = len(self.log())  # a restart appends to the same log: look only at what is new
        while time.monotonic() < deadline:
            if marker in self.log()[seen:]:
                return True
            if not self.alive():
                return False
            time.sleep(0.05)
        return False

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill9(self) -> frozenset[int]:
        """kill -9 the whole group; returns the PIDs that were in it."""
        pids = self.pids()
        self._signal_group(signal.SIGKILL)
        for pid in pids:  # a pool process that left the group still dies with the rest
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert self.popen is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        return pids

    def pause(self) -> frozenset[int]:
        pids = self.pids()
        self._signal_group(signal.SIGSTOP)
        return pids

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm stop (SIGTERM), then kill -9 of whatever is left, children included."""
        if self.popen is None:
            return
        try:  # handles, not numbers: psutil refuses to signal a PID that was reused meanwhile
            root = psutil.Process(self.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        if self.alive():
            self.resume()
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self._signal_group(signal.SIGKILL)
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


class Restarter:
    """What systemd or a container runtime does for a worker: start it under the same name, and
    start it again (after ``backoff``) whenever it exits, counting the starts it refused."""

    def __init__(self, make: Callable[[], Proc], backoff: float = 0.5) -> None:
        self.make = make
        self.backoff = backoff
        self.proc: Proc | None = None
        self.refused = 0

    def up(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc = self.make().start()
            if self.proc.wait_ready(max(0.5, deadline - time.monotonic())):
                return True
            if not self.proc.alive():
                self.refused += 1
                time.sleep(self.backoff)
        return False
