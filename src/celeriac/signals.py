"""Signals with Celery's names, senders and keyword arguments: ``@task_failure.connect`` and friends.

Receivers are called in the order they connected; a receiver that raises is logged and the
rest still run, so a broken hook never stops a worker. Senders check ``signal.receivers``
before building any argument, so a signal nobody listens to costs one attribute read.

Where each is sent (the sender first, then the keyword arguments):

- publishing (``apply_async``, ``send_task``): ``before_task_publish`` and ``after_task_publish``
  (task name; ``body``, ``exchange``, ``routing_key``, ``headers``, ``properties``, ``declare``,
  ``retry_policy``). ``headers`` is the message's own dict: a receiver may add to it.
- running a task, in a pool process and in eager mode alike: ``task_prerun`` (task; ``task_id``,
  ``task``, ``args``, ``kwargs``), ``task_success`` (task; ``result``, ``runtime``),
  ``task_failure`` (task; ``task_id``, ``exception``, ``args``, ``kwargs``, ``traceback``,
  ``einfo``), ``task_retry`` (task; ``request``, ``reason``, ``einfo``), ``task_postrun`` (task;
  ``task_id``, ``task``, ``args``, ``kwargs``, ``retval``, ``state``). ``task_failure`` is also
  sent by the main process for a task killed by its hard time limit or whose process died.
- in the pool process before a task runs: ``task_received`` (consumer; ``request``),
  ``task_unknown`` (consumer; ``name``, ``id``, ``message``, ``exc``), ``task_rejected`` (consumer;
  ``message``, ``exc``: a message that cannot be decoded), ``task_revoked`` (task; ``request``,
  ``terminated``, ``signum``, ``expired``; also in the main process for ``terminate=True``),
  ``task_internal_error`` (task; ``task_id``, ``args``, ``kwargs``, ``request``, ``exception``,
  ``traceback``, ``einfo``: the worker failed around the task, e.g. its result cannot be encoded).
- the worker's main process: ``celeryd_init`` (node name; ``instance``, ``conf``, ``options``),
  ``worker_init`` (worker), ``celeryd_after_setup`` (node name; ``instance``, ``conf``),
  ``worker_before_create_process`` (worker, before each pool process is forked), ``worker_ready``
  (worker), ``heartbeat_sent`` (worker), ``worker_shutting_down`` (node name; ``sig``, ``how``,
  ``exitcode``), ``worker_shutdown`` (worker); in each pool process
  ``worker_process_init`` and ``worker_process_shutdown`` (None; ``pid``, ``exitcode``).
- logging (worker and beat): ``setup_logging`` (``loglevel``, ``logfile``, ``format``,
  ``colorize``; connecting any receiver means celeriac configures no logging at all), then
  ``after_setup_logger`` and ``after_setup_task_logger`` (``logger`` and the same four).
- beat: ``beat_init`` (scheduler) whenever a scheduler starts, and ``beat_embedded_init`` as well
  when it runs inside a worker (-B).
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
            if wanted is not None and wanted is not sender and \
                    getattr(wanted, "name", wanted) != getattr(sender, "name", sender):
                continue
            try:
                replies.append((fn, fn(sender=sender, signal=self, **kwargs)))
            except Exception as exc:
                logger.exception("signal %s receiver %r raised", self.name, fn)
                replies.append((fn, exc))
        return replies

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"


before_task_publish = Signal("before_task_publish")
after_task_publish = Signal("after_task_publish")
task_received = Signal("task_received")
task_unknown = Signal("task_unknown")
task_rejected = Signal("task_rejected")
task_internal_error = Signal("task_internal_error")
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
celeryd_init = Signal("celeryd_init")
celeryd_after_setup = Signal("celeryd_after_setup")
worker_init = Signal("worker_init")
worker_before_create_process = Signal("worker_before_create_process")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_ready = Signal("worker_ready")
worker_shutting_down = Signal("worker_shutting_down")
worker_shutdown = Signal("worker_shutdown")
heartbeat_sent = Signal("heartbeat_sent")
setup_logging = Signal("setup_logging")
after_setup_logger = Signal("after_setup_logger")
after_setup_task_logger = Signal("after_setup_task_logger")
beat_init = Signal("beat_init")
beat_embedded_init = Signal("beat_embedded_init")
