"""The static types ``@app.task`` gives a task, so a call's arguments and result type-check.

``@app.task`` on ``def add(x: int, y: int) -> int`` makes a ``Task[(x: int, y: int), int]``:
``add.delay(1, "2")`` is a type error and ``add.delay(1, 2).get()`` is an ``int``. Nothing here
changes what runs; these only describe the objects :meth:`Celery.task` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypedDict, TypeVar, overload

from .task import Task

P = ParamSpec("P")
R = TypeVar("R")


class AsyncTask(Task[P, R]):
    """The type of an ``async def`` task: sent, its result is what the coroutine returns (``R``);
    called directly, it returns the coroutine, as in Celery. At run time it is a plain Task."""

    if TYPE_CHECKING:
        # Task.__call__ returns R; an async task's direct call is the coroutine that yields R.
        def __call__(  # type: ignore[override]
            self, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, R]: ...


class TaskOptions(TypedDict, total=False):
    """The options ``@app.task(...)`` takes besides ``name``, ``bind`` and ``base``
    (``Task.OPTIONS``): a misspelt one is a type error, as it is an error at run time."""

    max_retries: int | None
    default_retry_delay: float
    autoretry_for: tuple[type[BaseException], ...] | list[type[BaseException]]
    dont_autoretry_for: tuple[type[BaseException], ...]
    retry_kwargs: dict[str, Any]
    retry_backoff: bool | float
    retry_backoff_max: float
    retry_jitter: bool
    rate_limit: str | float | None
    time_limit: float | None
    soft_time_limit: float | None
    acks_late: bool | None
    acks_on_failure_or_timeout: bool | None
    reject_on_worker_lost: bool | None
    ignore_result: bool | None
    store_errors_even_if_ignored: bool | None
    track_started: bool | None
    queue: str | None
    priority: int | None
    expires: float | datetime | None
    serializer: str | None
    # Celery's, accepted so its code runs; they change nothing here.
    typing: bool
    shared: bool
    trail: bool
    send_events: bool
    throws: tuple[type[BaseException], ...]
    routing_key: str
    exchange: str
    lazy: bool
    pydantic: bool
    filter: Any


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` (without ``bind=True``) returns."""

    @overload
    def __call__(self, fun: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fun: Callable[P, R], /) -> Task[P, R]: ...


class BoundTaskDecorator(Protocol):
    """What ``@app.task(bind=True, ...)`` returns: the function's first parameter is the task
    itself (``self``), so the task's call signature is the rest."""

    @overload
    def __call__(self, fun: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fun: Callable[Concatenate[Any, P], R], /) -> Task[P, R]: ...
