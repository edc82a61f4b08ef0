"""Running ``async def`` tasks: time limits by cancellation, and a coroutine run from sync code.

A soft time limit cancels the task's asyncio task and throws :class:`SoftTimeLimitExceeded` into
the coroutine where it awaits, so ``except SoftTimeLimitExceeded`` inside the task works as with
Celery's signal-based soft limit. A hard time limit throws ``CancelledError`` (which task code
does not usually catch) and the task fails with :class:`TimeLimitExceeded`. A coroutine that
never yields cannot be cancelled: the supervisor then kills its process, as for prefork.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from . import signals, states
from .exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

if TYPE_CHECKING:
    from .execution import Outcome
    from .task import Context, Task


class _Limits:
    """Which limit fired last (set by the timer just before it cancels the asyncio task)."""

    __slots__ = ("fired", "hard", "hard_fired", "soft")

    def __init__(self, soft: float | None, hard: float | None) -> None:
        self.soft, self.hard = soft, hard
        self.fired: str | None = None
        self.hard_fired = False


class _Translated:
    """Awaits ``coro`` step by step, turning the cancellation a soft limit caused into
    SoftTimeLimitExceeded thrown at the coroutine's await. Python cannot choose the exception
    ``Task.cancel`` delivers; stepping the coroutine ourselves can."""

    __slots__ = ("coro", "limits")

    def __init__(self, coro: Coroutine[Any, Any, Any], limits: _Limits) -> None:
        self.coro, self.limits = coro, limits

    def __await__(self) -> Generator[Any, None, Any]:
        coro, limits = self.coro, self.limits
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                value = yield yielded
            except asyncio.CancelledError as cancel:
                error = cancel
                if limits.fired == "soft":
                    limits.fired = None
                    current = asyncio.current_task()
                    if current is not None:
                        current.uncancel()  # the task goes on: the cancellation was ours, and spent
                    error = SoftTimeLimitExceeded(f"SoftTimeLimitExceeded({limits.soft:g})")
            except BaseException as exc:  # thrown in by the event loop: pass it on as is
                error = exc


async def run_limited(coro: Coroutine[Any, Any, Any], soft: float | None, hard: float | None) -> Any:
    """Await ``coro`` under the time limits (seconds, None or 0 for none)."""
    if not soft and not hard:
        return await coro
    limits = _Limits(soft, hard)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def fire(which: str) -> None:
        limits.fired = which
        if which == "hard":
            limits.hard_fired = True
        task.cancel()

    timers = [loop.call_later(limit, fire, which) for which, limit in (("soft", soft), ("hard", hard))
              if limit]
    try:
        value = await _Translated(coro, limits)
    except asyncio.CancelledError:
        if limits.hard_fired:
            task.uncancel()
            raise TimeLimitExceeded(f"TimeLimitExceeded({hard:g})") from None
        raise
    finally:
        for timer in timers:
            timer.cancel()
    if limits.hard_fired:  # the coroutine swallowed the cancellation: its time was up all the same
        task.uncancel()
        raise TimeLimitExceeded(f"TimeLimitExceeded({hard:g})")
    return value


def run_coroutine(coro: Coroutine[Any, Any, Any], soft: float | None = None, hard: float | None = None) -> Any:
    """Run an ``async def`` task's coroutine from sync code (a prefork or thread pool process,
    eager mode): in a new event loop, or, when this thread already runs one (eager mode called
    from async code), in a new loop on a helper thread while this one waits."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_limited(coro, soft, hard))
    outcome: list[Any] = []
    failure: list[BaseException] = []
    context = contextvars.copy_context()  # the request stack the task reads as self.request

    def target() -> None:
        try:
            outcome.append(context.run(asyncio.run, run_limited(coro, soft, hard)))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="celeriac-eager-async")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


async def execute_async(task: Task[Any, Any], context: Context, soft: float | None, hard: float | None,
                        ) -> Outcome:
    """:func:`celeriac.execution.execute` for a worker's event loop: an ``async def`` task is
    awaited under its limits; a sync task runs in the loop's thread executor (limits there are
    the supervisor's kill only). Call it as the body of its own asyncio task."""
    from .execution import Outcome, caught, settle
    from .task import fresh_request_stack

    fresh_request_stack()
    args, kwargs = context.args, context.kwargs
    task.push_request(context)
    if signals.task_prerun.receivers:
        signals.task_prerun.send(sender=task, task_id=context.id, task=task, args=args, kwargs=kwargs)
    started = time.perf_counter()
    try:
        try:
            task.before_start(context.id or "", args, kwargs)
            if task.is_async:
                value = await run_limited(task.run(*args, **kwargs), soft, hard)
            else:
                call = contextvars.copy_context().run
                value = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: call(task.run, *args, **kwargs))
            outcome = Outcome(states.SUCCESS, result=value)
        except BaseException as exc:
            current = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and current is not None and current.cancelling():
                raise  # the pool itself is cancelling this run: not the task's outcome
            outcome = caught(task, exc)
        settle(task, context, outcome, started)
        return outcome
    finally:
        task.pop_request()
