"""Signatures: a task call to make later, as a plain dict that travels inside messages.

A :class:`Signature` is a ``dict`` (``task``, ``args``, ``kwargs``, ``options``,
``subtask_type``, ``immutable``), as Celery's is, so it survives JSON and is rebuilt on the other
side by :func:`signature`. Arguments given when it is finally called come *before* the bound
ones (``sub.s(2).delay(10)`` runs ``sub(10, 2)``): a chain hands each result to the next step
as its first argument. An immutable signature (``.si()``) ignores them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Celery
    from ..result import AsyncResult, EagerResult
    from ..task import Task
    from .stamping import StampingVisitor

#: subtask_type -> class, filled by the modules that define them (chain, group, chord, ...).
KINDS: dict[str, type[Signature]] = {}


class Signature(dict[str, Any]):
    """A task with (some of) its arguments and sending options bound: ``add.s(2)``."""

    _app: Celery | None = None
    _type: Task[Any, Any] | None = None

    def __init__(self, task: str | Task[Any, Any] | dict[str, Any] | None = None,
                 args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, subtask_type: str | None = None,
                 immutable: bool = False, app: Celery | None = None, **ex: Any) -> None:
        if isinstance(task, dict):  # a signature's dict (from a message) or another signature
            super().__init__(copy.deepcopy(dict(task)))
            self.setdefault("args", ())
            self.setdefault("kwargs", {})
            self.setdefault("options", {})
            self.setdefault("subtask_type", None)
            self.setdefault("immutable", False)
            self["args"] = tuple(self["args"])
            self._app = app or getattr(task, "_app", None)
            self._type = getattr(task, "_type", None)
            return
        if task is not None and not isinstance(task, str):
            self._type = task
            app = app or task.app
            task = task.name
        super().__init__(task=task, args=tuple(args or ()), kwargs=dict(kwargs or {}),
                         options={**(options or {}), **ex}, subtask_type=subtask_type, immutable=immutable)
        self._app = app

    # -- the dict's fields ----------------------------------------------------------------
    @property
    def task(self) -> str:
        return str(self["task"])

    name = task

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self["args"])

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self["kwargs"])

    @property
    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = self["options"]
        return options

    @property
    def subtask_type(self) -> str | None:
        return self.get("subtask_type")

    @property
    def immutable(self) -> bool:
        return bool(self.get("immutable"))

    @property
    def id(self) -> str | None:
        return self.options.get("task_id")

    @property
    def app(self) -> Celery:
        if self._app is not None:
            return self._app
        from ..app import current_app

        return current_app()

    @property
    def type(self) -> Task[Any, Any]:
        """The task object, looked up in the app's registry."""
        if self._type is None:
            self._type = self.app.get_task(self.task)
        return self._type

    # -- building -------------------------------------------------------------------------
    def _merge(self, args: Sequence[Any] | None, kwargs: dict[str, Any] | None,
               options: dict[str, Any] | None) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
        merged_options = {**self.options, **(options or {})}
        if self.immutable:
            return self.args, self.kwargs, merged_options
        return (*(args or ()), *self.args), {**self.kwargs, **(kwargs or {})}, merged_options

    def clone(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy with ``args`` prepended, ``kwargs`` and ``options`` merged (Celery's order)."""
        new = type(self).from_dict(copy.deepcopy(dict(self)), app=self._app)
        new._type = self._type
        if args or kwargs or options:
            new_args, new_kwargs, new_options = self._merge(args, kwargs, options)
            new["args"], new["kwargs"], new["options"] = new_args, new_kwargs, new_options
        return new

    partial = clone

    def replace(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                options: dict[str, Any] | None = None) -> Signature:
        """A copy with ``args``, ``kwargs`` or ``options`` swapped for the ones given (a part
        left None is kept), unlike :meth:`clone`, which merges."""
        new = self.clone()
        if args is not None:
            new["args"] = tuple(args)
        if kwargs is not None:
            new["kwargs"] = dict(kwargs)
        if options is not None:
            new["options"] = dict(options)
        return new

    @property
    def parent_id(self) -> str | None:
        return self.options.get("parent_id")

    @property
    def root_id(self) -> str | None:
        return self.options.get("root_id")

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set sending options (``queue``, ``countdown``, ...) in place; returns the signature."""
        if immutable is not None:
            self["immutable"] = immutable
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self["immutable"] = immutable

    def link(self, callback: dict[str, Any]) -> dict[str, Any]:
        """Call ``callback`` with this task's result when it succeeds; returns ``callback``."""
        self.options.setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: dict[str, Any]) -> dict[str, Any]:
        """Call ``errback`` when this task fails; returns ``errback``."""
        self.options.setdefault("link_error", []).append(errback)
        return errback

    def on_error(self, errback: dict[str, Any]) -> Signature:
        self.link_error(errback)
        return self

    def stamp(self, visitor: StampingVisitor | None = None, append_stamps: bool = False,
              **headers: Any) -> Signature:
        """Label this task (and its callbacks and errbacks) with ``headers``: they travel in its
        message, the task sees them as ``self.request.stamps``, and
        ``app.control.revoke_by_stamped_headers`` revokes by them. ``visitor`` decides further
        stamps per signature; ``append_stamps`` keeps earlier values of a stamp in a list."""
        from .stamping import stamp_signature

        stamp_signature(self, visitor, append_stamps, headers)
        return self

    def stamp_links(self, visitor: StampingVisitor | None, append_stamps: bool = False, **headers: Any) -> None:
        """Stamp only this signature's callbacks and errbacks (``link`` / ``link_error``)."""
        from .stamping import stamp_links

        stamp_links(self, visitor, append_stamps, headers)

    def freeze(self, _id: str | None = None, group_id: str | None = None, **_: Any) -> AsyncResult[Any]:
        """Fix the task id now (so results can be handed out before sending) and return its result."""
        from ..publish import new_task_id
        from ..result import AsyncResult

        options = self.options
        if _id is not None:
            options["task_id"] = _id
        options.setdefault("task_id", new_task_id())
        if group_id is not None:
            options["group_id"] = group_id
        return AsyncResult(options["task_id"], app=self.app, task_name=self.task)

    # -- calling --------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task's function here, synchronously, with the bound arguments."""
        call_args, call_kwargs, _ = self._merge(args, kwargs, None)
        return self.type(*call_args, **call_kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                    **options: Any) -> AsyncResult[Any]:
        """Send it: call-time ``args`` go before the bound ones."""
        call_args, call_kwargs, call_options = self._merge(args, kwargs, options)
        task = self._type or self.app.tasks.get(self.task)
        if task is not None:
            return task.apply_async(call_args, call_kwargs, **call_options)
        return self.app.send_task(self.task, call_args, call_kwargs, **call_options)

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
              **options: Any) -> EagerResult[Any]:
        """Run it here and now (eager), with the same argument order."""
        call_args, call_kwargs, call_options = self._merge(args, kwargs, options)
        return self.type.apply(call_args, call_kwargs, **call_options)

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        from .primitives import chain

        if isinstance(other, Signature):
            return chain(self, other, app=self._app)
        return NotImplemented

    def __deepcopy__(self, memo: dict[int, Any]) -> Signature:
        new = type(self).from_dict(copy.deepcopy(dict(self), memo), app=self._app)
        new._type = self._type
        return new

    def __reduce__(self) -> Any:
        return signature, (dict(self),)

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict (nested signatures included), as messages carry it."""
        return _plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Celery | None = None) -> Signature:
        sig = Signature.__new__(cls)
        Signature.__init__(sig, d, app=app)
        return sig

    def __repr__(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}({', '.join(shown)}){'!' if self.immutable else ''}"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def signature(varies: Any, *args: Any, app: Celery | None = None, **kwargs: Any) -> Signature:
    """A signature from a task name, a task, or a signature's dict (rebuilt as its own kind)."""
    if isinstance(varies, dict):
        if isinstance(varies, Signature) and not args and not kwargs:
            return varies.clone()
        kind = KINDS.get(varies.get("subtask_type") or "", Signature)
        return kind.from_dict(dict(varies), app=app)
    return Signature(varies, *args, app=app, **kwargs)  # type: ignore[misc]


def maybe_signature(d: Any, app: Celery | None = None) -> Signature | None:
    """``d`` as a signature (rebuilt from a dict), or None for None."""
    if d is None:
        return None
    if isinstance(d, Signature):
        if app is not None and d._app is None:
            d._app = app
        return d
    if isinstance(d, dict):
        return signature(d, app=app)
    raise TypeError(f"expected a signature or its dict, not {type(d).__name__}")
