"""Signals with Celery's names: ``@worker_process_init.connect`` and friends.

Receivers are called in the order they connected; a receiver that raises is logged and the
rest still run, so a broken hook never stops a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("celeriac.signals")


class Signal:
    def __init__(self, name: str) -> None:
        self.name = name
        self.receivers: list[tuple[Callable[..., Any], Any]] = []

    def connect(self, receiver: Callable[..., Any] | None = None, *, sender: Any = None,
                weak: bool = False, dispatch_uid: str | None = None) -> Any:
        """Connect ``receiver``; usable as ``@signal.connect`` or ``@signal.connect(sender=...)``."""
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if all(existing is not fn for existing, _ in self.receivers):
                self.receivers.append((fn, sender))
            return fn

        return add(receiver) if receiver is not None else add

    def disconnect(self, receiver: Callable[..., Any]) -> None:
        self.receivers = [(fn, s) for fn, s in self.receivers if fn is not receiver]

    def send(self, sender: Any = None, **kwargs: Any) -> list[tuple[Callable[..., Any], Any]]:
        replies = []
        for fn, wanted in list(self.receivers):
            if wanted is not None and wanted is not sender and wanted != getattr(sender, "name", None):
                continue
            try:
                replies.append((fn, fn(sender=sender, signal=self, **kwargs)))
            except Exception as exc:
                logger.exception("signal %s receiver %r raised", self.name, fn)
                replies.append((fn, exc))
        return replies

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"


task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
worker_init = Signal("worker_init")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_ready = Signal("worker_ready")
worker_shutdown = Signal("worker_shutdown")
beat_init = Signal("beat_init")
