"""Secret arguments hidden wherever a task's arguments are shown (``task_redact_args``).

A name in ``task_redact_args`` hides the value of a keyword argument of that name, of a
positional argument whose parameter has that name (matched through the task's signature, as
Celery's argspec does: ``login("ada", "hunter2")`` hides ``password``), and of a dict key of that
name at any depth inside any argument. Every place that shows arguments goes through here: task
events, ``inspect active/reserved/scheduled``, the args ``result_extended`` stores, the
max-retries error message.

With no names configured, :meth:`Redactor.arguments` returns its input untouched, so the worker's
per-task path pays one truth test.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Sequence
from typing import Any

REDACTED = "***"
# Deeper than this, a value is hidden whole: walking it further could exhaust the stack, and a
# value that could not be checked must not be shown.
MAX_DEPTH = 64

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@functools.lru_cache(maxsize=1024)
def parameter_names(target: Any) -> tuple[str, ...]:
    """The names of the positional parameters of a task (its ``run``) or a function, in order;
    empty when they cannot be known. A bound ``run`` (``bind=True``) leaves ``self`` out."""
    fun = getattr(target, "run", target)
    try:
        parameters = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in parameters if p.kind in _POSITIONAL)


class Redactor:
    __slots__ = ("names",)

    def __init__(self, names: Iterable[str] | None) -> None:
        self.names = frozenset(names or ())

    def __bool__(self) -> bool:
        return bool(self.names)

    def value(self, value: Any, depth: int = 0) -> Any:
        """``value`` with the values of secret dict keys hidden, at any depth."""
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                return REDACTED
            names = self.names
            return {k: (REDACTED if k in names else self.value(v, depth + 1)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            if depth >= MAX_DEPTH:
                return REDACTED
            items = [self.value(v, depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        return value

    def arguments(self, args: Sequence[Any], kwargs: dict[str, Any],
                  task: Any = None) -> tuple[Sequence[Any], dict[str, Any]]:
        """``(args, kwargs)`` as they may be shown. ``task`` (a task or function, when known)
        names the positional arguments; without it only keywords and nested keys are matched."""
        names = self.names
        if not names:
            return args, kwargs
        params = parameter_names(task) if task is not None else ()
        shown_args = [REDACTED if i < len(params) and params[i] in names else self.value(v, 1)
                      for i, v in enumerate(args)]
        shown_kwargs = {k: (REDACTED if k in names else self.value(v, 1)) for k, v in kwargs.items()}
        return shown_args, shown_kwargs


@functools.lru_cache(maxsize=16)
def _redactor(names: tuple[str, ...]) -> Redactor:
    return Redactor(names)


def redactor(names: Iterable[str] | None) -> Redactor:
    """The redactor for ``task_redact_args`` (cached: settings may change, but rarely)."""
    return _redactor(tuple(names or ()))
