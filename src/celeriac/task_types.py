"""The static types ``@app.task`` gives a task, so a call's arguments and result type-check.

``@app.task`` on ``def add(x: int, y: int) -> int`` makes a ``Task[(x: int, y: int), int]``:
``add.delay(1, "2")`` is a type error and ``add.delay(1, 2).get()`` is an ``int``. Nothing here
changes what runs; these only describe the objects :meth:`Celery.task` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

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
