"""Running one task: the request context, the call, and what came of it.

Shared by the worker and by eager mode (``Task.apply``), so a task behaves the same in a
unit test as in production: retries, autoretry with backoff, Reject and Ignore, hooks.
"""

from __future__ import annotations

import logging
import time
import traceback as tb
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from . import message, signals, states
from .exceptions import EncodeError, Ignore, Reject, Retry, WorkerShutdown, WorkerTerminate
from .message import Envelope
from .redaction import Redactor
from .task import Context, Task

logger = logging.getLogger("celeriac.task")

IGNORED = "IGNORED"  # not a stored state: the task asked for its message to be dropped

# The worker's main process, set when a worker starts (pool processes inherit it); None in eager
# mode and in callers. A task raising WorkerShutdown/WorkerTerminate stops that worker.
worker_pid: int | None = None


class Outcome(msgspec.Struct):
    """What came of one run. A Struct, not a dataclass: its ``__init__`` is C, not Python (about
    2,000 instructions less per task, callgrind); it is never encoded."""

    state: str
    result: Any = None
    exc: BaseException | None = None
    traceback: str | None = None
    retry: Envelope | None = None
    retry_in: float = 0.0
    requeue: bool = False
    runtime: float = 0.0
    reason: BaseException | None = None  # the Retry that asked for a retry


@dataclass(slots=True)
class ExceptionInfo:
    """The ``einfo`` of ``task_failure`` / ``task_retry``, shaped like Celery's: the exception,
    its type, the traceback object and ``traceback`` as text (also what ``str()`` gives)."""

    exception: BaseException | None
    traceback: str
    tb: Any = None

    @property
    def type(self) -> type[BaseException] | None:
        return type(self.exception) if self.exception is not None else None

    def __str__(self) -> str:
        return self.traceback


def exception_fields(exc: BaseException, traceback: str | None) -> dict[str, Any]:
    args = list(exc.args)
    try:
        message.dumps(args)
    except EncodeError:
        args = [str(exc)]
    return {"exc_type": type(exc).__name__, "exc_module": type(exc).__module__,
            "exc_message": args, "traceback": traceback}


_new_object = object.__new__


def request_for(envelope: Envelope, *, hostname: str | None, delivery_info: dict[str, Any],
                is_eager: bool = False) -> Context:
    # Context(**fields) as a dict literal given to a bare instance: the keywords' dict, the copy
    # into the instance's dict and its resizes cost twice as much (22,000 instructions against
    # 11,000, callgrind), once per task.
    context: Context = _new_object(Context)
    context.__dict__ = {
        "id": envelope.id, "task": envelope.task, "args": envelope.args, "kwargs": envelope.kwargs,
        "retries": envelope.retries, "eta": envelope.eta, "expires": envelope.expires, "hostname": hostname,
        "delivery_info": delivery_info, "is_eager": is_eager, "called_directly": False,
        "root_id": envelope.root_id or envelope.id, "parent_id": envelope.parent_id, "group": envelope.group_id,
        "headers": envelope.headers, "origin": envelope.origin,
        "time_limit": (envelope.time_limit, envelope.soft_time_limit),
        "ignore_result": envelope.ignore_result, "envelope": envelope,
    }
    return context


def _autoretry(task: Task[Any, Any], exc: BaseException) -> Outcome | None:
    if not task.autoretry_for or not isinstance(exc, task.autoretry_for):
        return None
    if task.dont_autoretry_for and isinstance(exc, task.dont_autoretry_for):
        return None
    kwargs = dict(task.retry_kwargs)
    kwargs.setdefault("countdown", task.backoff_for(task.request.retries))
    try:
        task.retry(exc=exc, **kwargs)
    except Retry as retry:
        return Outcome(states.RETRY, exc=exc, traceback=tb.format_exc(), retry=retry.envelope,
                       retry_in=retry.when or 0.0, reason=retry)
    except BaseException:  # past max_retries: retry() re-raised exc, which is the failure
        return None
    return None


def _call_hook(hook: Any, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        logger.exception("task hook %s raised", getattr(hook, "__name__", hook))


def execute(task: Task[Any, Any], context: Context, soft_limit: float | None = None,
            hard_limit: float | None = None) -> Outcome:
    """Run ``task`` with ``context`` as its request; never raises for the task's own errors.
    An ``async def`` task runs to completion in an event loop of its own, where the limits are
    enforced by cancellation (see :mod:`celeriac.aio`)."""
    args, kwargs = context.args, context.kwargs
    task.push_request(context)
    if signals.task_prerun.receivers:
        signals.task_prerun.send(sender=task, task_id=context.id, task=task, args=args, kwargs=kwargs)
    started = time.perf_counter()
    try:
        try:
            if type(task).before_start is not Task.before_start:  # as Celery's tracer: a hook only if overridden
                task.before_start(context.id or "", args, kwargs)
            value = task.run(*args, **kwargs)
            if task.is_async:
                from .aio import run_coroutine

                value = run_coroutine(value, soft_limit, hard_limit)
            outcome = Outcome(states.SUCCESS, result=value)
        except BaseException as exc:  # SystemExit from task code must not end the worker
            outcome = caught(task, exc)
        outcome.runtime = time.perf_counter() - started  # settle(), inlined: this is the per-task path
        _run_hooks(task, context, outcome)
        _send_outcome(task, context, outcome)
        return outcome
    finally:
        task.pop_request()


def caught(task: Task[Any, Any], exc: BaseException) -> Outcome:
    """What an exception out of a task means; called inside the ``except`` block, so the
    traceback is the one being handled."""
    if isinstance(exc, Retry):
        return Outcome(states.RETRY, exc=exc.exc, traceback=tb.format_exc() if exc.exc else None,
                       retry=exc.envelope, retry_in=exc.when or 0.0, reason=exc)
    if isinstance(exc, Reject):
        return Outcome(states.REJECTED, exc=exc, traceback=tb.format_exc(), requeue=exc.requeue)
    if isinstance(exc, Ignore):
        return Outcome(IGNORED)
    if isinstance(exc, (WorkerShutdown, WorkerTerminate)) and worker_pid is not None:
        _stop_worker(cold=isinstance(exc, WorkerTerminate))
    return _autoretry(task, exc) or Outcome(states.FAILURE, exc=exc, traceback=tb.format_exc())


def _stop_worker(cold: bool) -> None:
    """As in Celery: WorkerShutdown from a task is a warm shutdown of its worker (the signal
    `celeriac multi stop` sends), WorkerTerminate a cold one. The task itself is recorded FAILURE."""
    import os
    import signal

    logger.warning("a task raised %s: %s shutdown of the worker", "WorkerTerminate" if cold else "WorkerShutdown",
                   "cold" if cold else "warm")
    try:
        os.kill(worker_pid or 0, signal.SIGQUIT if cold else signal.SIGTERM)
    except OSError as exc:
        logger.error("could not signal the worker (pid %s): %s", worker_pid, exc)


def settle(task: Task[Any, Any], context: Context, outcome: Outcome, started: float) -> None:
    """Time the outcome, then run the task's hooks and send its signals."""
    outcome.runtime = time.perf_counter() - started
    _run_hooks(task, context, outcome)
    _send_outcome(task, context, outcome)


def _send_outcome(task: Task[Any, Any], context: Context, outcome: Outcome) -> None:
    state = outcome.state
    if state == states.SUCCESS:
        if signals.task_success.receivers:
            signals.task_success.send(sender=task, result=outcome.result, runtime=outcome.runtime)
    elif state == states.FAILURE:
        if signals.task_failure.receivers:
            exc = outcome.exc
            tb_object = exc.__traceback__ if exc is not None else None
            signals.task_failure.send(sender=task, task_id=context.id, exception=exc, args=context.args,
                                      kwargs=context.kwargs, traceback=tb_object,
                                      einfo=ExceptionInfo(exc, outcome.traceback or "", tb_object))
    elif state == states.RETRY and signals.task_retry.receivers:
        exc = outcome.exc
        signals.task_retry.send(sender=task, request=context, reason=outcome.reason or exc,
                                einfo=ExceptionInfo(exc, outcome.traceback or "",
                                                    exc.__traceback__ if exc is not None else None))


def send_postrun(task: Task[Any, Any], context: Context, outcome: Outcome) -> None:
    """``task_postrun``, sent by the caller once it has concluded (and encoded) the outcome."""
    if signals.task_postrun.receivers:
        signals.task_postrun.send(sender=task, task_id=context.id, task=task, args=context.args,
                                  kwargs=context.kwargs, retval=outcome.result if outcome.exc is None
                                  else outcome.exc, state=outcome.state)


def send_revoked(task: Any, request: Any, *, terminated: bool = False, signum: int | None = None,
                 expired: bool = False) -> None:
    if signals.task_revoked.receivers:
        signals.task_revoked.send(sender=task, request=request, terminated=terminated, signum=signum,
                                  expired=expired)


def _run_hooks(task: Task[Any, Any], context: Context, outcome: Outcome) -> None:
    cls = type(task)
    # Skip the calls entirely for the common case of a plain function task.
    if cls.on_success is Task.on_success and cls.on_failure is Task.on_failure \
            and cls.on_retry is Task.on_retry and cls.after_return is Task.after_return:
        return
    task_id, args, kwargs = context.id or "", context.args, context.kwargs
    if outcome.state == states.SUCCESS:
        _call_hook(task.on_success, outcome.result, task_id, args, kwargs)
    elif outcome.state == states.FAILURE:
        _call_hook(task.on_failure, outcome.exc, task_id, args, kwargs, outcome.traceback)
    elif outcome.state == states.RETRY:
        _call_hook(task.on_retry, outcome.exc, task_id, args, kwargs, outcome.traceback)
    _call_hook(task.after_return, outcome.state, outcome.result if outcome.exc is None else outcome.exc,
               task_id, args, kwargs, outcome.traceback)


_second_text: tuple[int, str] = (-1, "")  # the last second utc_iso formatted, without the zone


def utc_iso(ns: int | None = None) -> str:
    """``datetime.now(UTC).isoformat()`` (or at ``ns``, nanoseconds since the epoch): the same
    text at about a fifth of the cost, once per task (``date_done``). isoformat formats through
    printf; here the date and time of day are formatted once per second and the microseconds
    (floored, as ``datetime.now`` does) each call."""
    global _second_text
    if ns is None:
        ns = time.time_ns()
    second, micro = divmod(ns, 1_000_000_000)
    micro //= 1000
    seen, text = _second_text
    if second != seen:
        text = datetime.fromtimestamp(second, UTC).isoformat()[:-6]  # less "+00:00"
        _second_text = (second, text)
    return f"{text}.{micro:06d}+00:00" if micro else text + "+00:00"


def outcome_meta(context: Context, outcome: Outcome, *, extended: bool = False, redactor: Redactor | None = None,
                 task: Task[Any, Any] | None = None) -> tuple[str, bytes]:
    """Encode the record to store for ``outcome``; a result JSON cannot carry becomes a FAILURE
    naming its type, so a task is never reported SUCCESS without its result stored. With
    ``extended``, the arguments are stored too, less what ``redactor`` hides."""
    fields: dict[str, Any] = {"task_id": context.id, "status": outcome.state, "name": context.task,
                              "retries": context.retries, "worker": context.hostname}
    if extended:
        args: Sequence[Any] = context.args
        kwargs = context.kwargs
        if redactor:
            args, kwargs = redactor.arguments(args, kwargs, task)
        fields["args"], fields["kwargs"] = args, kwargs
        fields["queue"] = context.delivery_info.get("queue")
        if context.headers.get("stamped_headers"):  # as Celery's extended results show them
            fields["stamped_headers"] = context.stamped_headers
            fields.update(context.stamps)
    if outcome.state in states.READY_STATES:
        fields["date_done"] = utc_iso()
    children = context.__dict__.get("children")
    if children:
        fields["children"] = children
    if outcome.exc is not None:
        fields.update(exception_fields(outcome.exc, outcome.traceback))
        fields["result"] = str(outcome.exc)
    else:
        fields["result"] = outcome.result
    try:
        return outcome.state, message.dumps(fields)
    except EncodeError as exc:
        what = outcome.result if outcome.exc is None else outcome.exc
        error = EncodeError(f"cannot encode {type(what).__name__} returned by {context.task} as JSON: "
                            f"{str(exc).rpartition(': ')[2]}")
        outcome.state, outcome.exc, outcome.result = states.FAILURE, error, None
        outcome.traceback = f"EncodeError: {error}"
        if signals.task_internal_error.receivers:
            signals.task_internal_error.send(sender=task if task is not None else context.task, task_id=context.id,
                                             args=context.args, kwargs=context.kwargs, request=context,
                                             exception=error, traceback=None,
                                             einfo=ExceptionInfo(error, outcome.traceback))
        fields.update(status=states.FAILURE, result=str(error), **exception_fields(error, outcome.traceback))
        return states.FAILURE, message.dumps(fields)
