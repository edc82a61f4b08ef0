"""prefork: each member is a forked pool process running one task at a time (the default)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import TYPE_CHECKING

from ... import signals
from .base import Pool

if TYPE_CHECKING:
    from ..consumer import Consumer
    from ..supervisor import Supervisor

logger = logging.getLogger("celeriac.worker")

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _die_with_parent(parent: int) -> None:
    """A pool process must not outlive its supervisor: its leases die with the supervisor's
    heartbeat, so an orphan would run tasks that are already being recovered elsewhere."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class PreforkPool(Pool):
    name = "prefork"
    processes = True

    def __init__(self, supervisor: Supervisor, width: int = 1) -> None:
        super().__init__(supervisor, width)
        self.children: dict[int, int] = {}  # pid -> index

    def process_consumer(self, index: int) -> Consumer:
        """What the forked process runs."""
        return self.consumer(index, in_thread=False)

    def start(self, index: int) -> str:
        sup = self.sup
        if signals.worker_before_create_process.receivers:
            signals.worker_before_create_process.send(sender=sup)
        parent = os.getpid()
        # A stop signal must not reach the child while it still runs the supervisor's handlers:
        # it stays pending until the consumer has installed its own (Consumer.run unblocks).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if pid == 0:  # the pool process
            code = 1
            try:
                _die_with_parent(parent)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGQUIT, signal.SIG_DFL)
                import multiprocessing

                multiprocessing.current_process().name = f"ForkPoolWorker-{index + 1}"
                code = self.process_consumer(index).run()
            except BaseException:
                logger.exception("pool process crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index
        return f"{sup.incarnation}/{pid}-{index}"

    def members(self) -> list[tuple[int, int]]:
        return sorted(self.children.items())

    def signal(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def alive(self) -> bool:
        return bool(self.children)

    def reap(self, block: bool) -> list[tuple[int, int, int]]:
        gone: list[tuple[int, int, int]] = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid == 0:
                break
            index = self.children.pop(pid, None)
            if index is not None:
                gone.append((index, pid, status))
        return gone

    def shrink(self, target: int) -> None:
        for pid, index in list(self.children.items()):
            if index >= target:
                os.kill(pid, signal.SIGTERM)
