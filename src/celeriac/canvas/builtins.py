"""The tasks canvas sends by name, known to every app without being declared: the chord join,
``task.map``/``starmap``/``chunks`` (``celery.map``, ``celery.starmap``, as Celery names them)
and ``celery.accumulate`` (a group replacing a task is made a chord ending in it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .chords import JOIN_TASK, join
from .signature import signature

if TYPE_CHECKING:
    from ..app import Celery
    from ..task import Task


def _map(task: Task[Any, Any], sig: dict[str, Any], it: list[Any]) -> list[Any]:
    call = signature(sig, app=task.app)
    return [call(item) for item in it]


def _starmap(task: Task[Any, Any], sig: dict[str, Any], it: list[Any]) -> list[Any]:
    call = signature(sig, app=task.app)
    return [call(*item) for item in it]


def _accumulate(task: Task[Any, Any], *args: Any, index: int | None = None) -> Any:
    return args[index] if index is not None else (args[0] if len(args) == 1 else args)


BUILTINS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    JOIN_TASK: (join, {"ignore_result": True, "max_retries": None}),
    "celery.map": (_map, {}),
    "celery.starmap": (_starmap, {}),
    "celery.accumulate": (_accumulate, {}),
}


def builtin_task(app: Celery, name: str) -> Task[Any, Any] | None:
    """Register and return the builtin task ``name`` on ``app`` (None if there is none)."""
    found = BUILTINS.get(name)
    if found is None:
        return None
    fun, options = found
    task: Task[Any, Any] = app.task(name=name, bind=True, **options)(fun)
    return task
