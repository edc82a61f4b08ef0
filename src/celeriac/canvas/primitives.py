"""Canvas primitives with Celery's names and behaviour: chain, group, chord, xmap, xstarmap, chunks.

Each is a :class:`Signature` whose kwargs hold its parts, so it travels in a message as a plain
dict like any signature. Sending one turns it into ordinary task messages carrying a
:class:`~celeriac.message.Flow` (what follows each task); the worker reads that flow in one
place, :mod:`celeriac.canvas.followups`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .signature import KINDS, Signature, maybe_signature
from .stamping import StampingVisitor, collect, stamp_links, stamp_members

if TYPE_CHECKING:
    from ..app import Celery
    from ..result import AsyncResult, EagerResult, GroupResult

# Options a chain routes to its last step (what follows the chain as a whole); the rest go to
# every step that did not set them itself.
_LAST_STEP_OPTIONS = ("task_id", "link", "chain", "chord")
_FIRST_STEP_OPTIONS = ("parent_id", "root_id", "countdown", "eta")


def _tasks(tasks: tuple[Any, ...]) -> list[Any]:
    if len(tasks) == 1 and not isinstance(tasks[0], dict) and isinstance(tasks[0], Iterable):
        return list(tasks[0])
    return list(tasks)


def _sigs(value: Any) -> list[Any]:
    """A ``link``/``link_error`` option as a list: one signature (a dict) or several."""
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)


def _eager(app: Celery) -> bool:
    return bool(app.conf.task_always_eager)


def _app_of(members: Sequence[Any], app: Celery | None) -> Celery | None:
    """A composite's app: the one given, else its first member's (as Celery's group and chain
    do), so a canvas of one app's tasks never lands in whatever app happens to be current."""
    if app is not None:
        return app
    return next((m._app for m in members if isinstance(m, Signature) and m._app is not None), None)


class chain(Signature):
    """Run tasks one after the other, each result the first argument of the next:
    ``chain(add.s(2, 2), mul.s(4))`` or ``add.s(2, 2) | mul.s(4)``."""

    def __init__(self, *tasks: Any, app: Celery | None = None, **options: Any) -> None:
        if len(tasks) == 1 and isinstance(tasks[0], dict) and tasks[0].get("subtask_type") == "chain" \
                and not options:
            Signature.__init__(self, tasks[0], app=app)
            return
        steps = [maybe_signature(t, app) for t in _tasks(tasks)]
        Signature.__init__(self, "celery.chain", (), {"tasks": steps}, options, subtask_type="chain",
                           app=_app_of(steps, app))

    @property
    def tasks(self) -> list[Signature]:
        return [s for s in (maybe_signature(t, self._app) for t in self["kwargs"]["tasks"]) if s is not None]

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, chain):
            return chain(*self.tasks, *other.tasks, app=self._app, **self.options)
        if isinstance(other, Signature):
            return chain(*self.tasks, other, app=self._app, **self.options)
        return NotImplemented

    def steps(self) -> list[Signature]:
        """The steps ready to send: copies, nested chains flattened, and a group followed by
        another step upgraded to a chord (its results are that step's argument), as Celery does."""
        flat: list[Signature] = []
        for step in self.tasks:
            flat.extend(step.steps() if isinstance(step, chain) else [step.clone()])
        out: list[Signature] = []
        for step in flat:
            if out and isinstance(out[-1], group) and not isinstance(out[-1], chord):
                out[-1] = chord(out[-1], step, app=self._app)
            else:
                out.append(step)
        return out

    def stamp(self, visitor: StampingVisitor | None = None, append_stamps: bool = False,
              **headers: Any) -> Signature:
        """Stamp every step (and the chain's callbacks and errbacks)."""
        said = (visitor.on_chain_start(self, **headers) or {}) if visitor is not None else None
        headers = collect(self, said, append_stamps, headers)
        stamp_links(self, visitor, append_stamps, headers)
        self["kwargs"]["tasks"] = stamp_members(self.tasks, visitor, append_stamps, headers)
        if visitor is not None:
            visitor.on_chain_end(self, **headers)
        return self

    def freeze(self, _id: str | None = None, group_id: str | None = None, **_: Any) -> AsyncResult[Any]:
        steps = self.steps()
        self["kwargs"]["tasks"] = steps
        results = [s.freeze() for s in steps[:-1]]
        last = steps[-1].freeze(_id)
        _link_parents([*results, last])
        return last

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                    **options: Any) -> AsyncResult[Any]:
        options = {**self.options, **options}
        if _eager(self.app):
            return self.apply(args, kwargs, **options)
        steps = self.steps()
        if not steps:
            raise ValueError("chain(): nothing to run (no tasks given)")
        last_options = {k: options.pop(k) for k in _LAST_STEP_OPTIONS if k in options}
        first_options = {k: options.pop(k) for k in _FIRST_STEP_OPTIONS if k in options}
        errbacks = _sigs(options.pop("link_error", None))
        for step in steps:
            for key, value in options.items():
                step.options.setdefault(key, value)
            for errback in errbacks:  # a failure anywhere stops the chain and calls these
                step.link_error(errback)
        last = steps[-1]
        for key, value in last_options.items():
            if key == "link":
                for callback in _sigs(value):
                    last.link(callback)
            elif key == "chain":
                steps.extend(s for s in (maybe_signature(v, self._app) for v in value) if s is not None)
            else:
                last.options[key] = value
        results = [s.freeze(s.options.get("task_id")) for s in steps]
        _link_parents(results)
        first, rest = steps[0], steps[1:]
        first.apply_async(args, kwargs, chain=[s.as_dict() for s in rest], **first_options)
        return results[-1]

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
              **options: Any) -> EagerResult[Any]:
        """Run every step here, in order; a failing step stops the chain (its errbacks run)."""
        steps = self.steps()
        if not steps:
            raise ValueError("chain(): nothing to run (no tasks given)")
        errbacks = _sigs(options.pop("link_error", None) or self.options.get("link_error"))
        throw = options.pop("throw", None)
        result: Any = None
        previous: Any = None
        call_args: Sequence[Any] | None = args
        for index, step in enumerate(steps):
            for errback in errbacks:
                step.link_error(errback)
            result = step.apply(call_args, kwargs if index == 0 else None, throw=throw)
            result.parent = previous
            previous = result
            if not result.successful():
                break
            call_args = (result.get(),)
        return result  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) or "chain()"


def _link_parents(results: Sequence[Any]) -> None:
    for parent, child in itertools.pairwise(results):
        child.parent = parent


class group(Signature):
    """Run tasks in parallel: ``group(add.s(i, i) for i in range(10))()`` returns a GroupResult."""

    def __init__(self, *tasks: Any, app: Celery | None = None, **options: Any) -> None:
        if len(tasks) == 1 and isinstance(tasks[0], dict) and tasks[0].get("subtask_type") == "group" \
                and not options:
            Signature.__init__(self, tasks[0], app=app)
            return
        members = [maybe_signature(t, app) for t in _tasks(tasks)]
        Signature.__init__(self, "celery.group", (), {"tasks": members}, options, subtask_type="group",
                           app=_app_of(members, app))

    @property
    def tasks(self) -> list[Signature]:
        return [s for s in (maybe_signature(t, self._app) for t in self["kwargs"]["tasks"]) if s is not None]

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, Signature) and not isinstance(other, group):
            # group | task is a chord: the task gets the list of the group's results
            if isinstance(other, chain):
                steps = other.tasks
                return chain(chord(self, steps[0], app=self._app), *steps[1:], app=self._app)
            return chord(self, other, app=self._app)
        return Signature.__or__(self, other)

    def __call__(self, *args: Any, **options: Any) -> GroupResult:
        return self.apply_async(args, **options)

    def link(self, callback: dict[str, Any]) -> dict[str, Any]:
        for task in self["kwargs"]["tasks"]:
            maybe_signature(task, self._app).link(callback)  # type: ignore[union-attr]
        return callback

    def link_error(self, errback: dict[str, Any]) -> dict[str, Any]:
        for task in self["kwargs"]["tasks"]:
            maybe_signature(task, self._app).link_error(errback)  # type: ignore[union-attr]
        return errback

    def stamp(self, visitor: StampingVisitor | None = None, append_stamps: bool = False,
              **headers: Any) -> Signature:
        """Stamp every member."""
        said = (visitor.on_group_start(self, **headers) or {}) if visitor is not None else None
        headers = collect(self, said, append_stamps, headers)
        stamp_links(self, visitor, append_stamps, headers)
        self["kwargs"]["tasks"] = stamp_members(self.tasks, visitor, append_stamps, headers)
        if visitor is not None:
            visitor.on_group_end(self, **headers)
        return self

    def freeze(self, _id: str | None = None, group_id: str | None = None, **_: Any) -> GroupResult:  # type: ignore[override]
        from ..publish import new_task_id
        from ..result import GroupResult

        gid = _id or self.options.get("task_id") or new_task_id()
        self.options["task_id"] = gid
        members = [t.clone() for t in self.tasks]
        self["kwargs"]["tasks"] = members
        return GroupResult(gid, [m.freeze(group_id=gid) for m in members], app=self.app)

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,  # type: ignore[override]
                    **options: Any) -> GroupResult:
        from ..publish import new_task_id
        from ..result import GroupResult

        options = {**self.options, **options}
        if _eager(self.app):
            return self.apply(args, kwargs, **options)
        gid = options.pop("task_id", None) or options.pop("group_id", None) or new_task_id()
        options.pop("chain", None)  # a group ends a chain: nothing runs after it
        results = [member.apply_async(args, kwargs, group_id=gid, **options) for member in self.tasks]
        return GroupResult(gid, results, app=self.app)

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,  # type: ignore[override]
              **options: Any) -> GroupResult:
        from ..publish import new_task_id
        from ..result import GroupResult

        gid = options.pop("task_id", None) or options.pop("group_id", None) or new_task_id()
        options.pop("chain", None)
        return GroupResult(gid, [m.apply(args, kwargs, **options) for m in self.tasks], app=self.app)

    def __len__(self) -> int:
        return len(self["kwargs"]["tasks"])

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"


class chord(group):
    """A group whose results, once every member is done, are the first argument of ``body``:
    ``chord(add.s(i, i) for i in range(10))(tsum.s())``. A failed member makes the body fail
    with ChordError (and calls the body's errbacks) instead of running it."""

    def __init__(self, header: Any, body: Any = None, app: Celery | None = None, **options: Any) -> None:
        if isinstance(header, dict) and header.get("subtask_type") == "chord" and body is None and not options:
            Signature.__init__(self, header, app=app)
            return
        members = header.tasks if isinstance(header, group) else [maybe_signature(t, app) for t in _tasks((header,))]
        body = maybe_signature(body, app)
        Signature.__init__(self, "celery.chord", (), {"header": members, "body": body},
                           options, subtask_type="chord", app=_app_of([*members, body], app))

    @property
    def tasks(self) -> list[Signature]:
        return [s for s in (maybe_signature(t, self._app) for t in self["kwargs"]["header"]) if s is not None]

    @property
    def body(self) -> Signature | None:
        return maybe_signature(self["kwargs"].get("body"), self._app)

    def __call__(self, body: Any = None, **options: Any) -> AsyncResult[Any]:  # type: ignore[override]
        return self.apply_async((), {"body": body} if body is not None else None, **options)

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        return Signature.__or__(self, other)

    def link(self, callback: dict[str, Any]) -> dict[str, Any]:
        body = self.body
        assert body is not None
        body.link(callback)
        self["kwargs"]["body"] = body
        return callback

    def link_error(self, errback: dict[str, Any]) -> dict[str, Any]:
        body = self.body
        assert body is not None
        body.link_error(errback)
        self["kwargs"]["body"] = body
        return errback

    def stamp(self, visitor: StampingVisitor | None = None, append_stamps: bool = False,
              **headers: Any) -> Signature:
        """Stamp every header task and, with a visitor (whose ``on_chord_body`` may add
        stamps), the body too, as Celery does."""
        said = (visitor.on_chord_header_start(self, **headers) or {}) if visitor is not None else None
        headers = collect(self, said, append_stamps, headers)
        stamp_links(self, visitor, append_stamps, headers)
        self["kwargs"]["header"] = stamp_members(self.tasks, visitor, append_stamps, headers)
        body = self.body
        if visitor is not None:
            visitor.on_chord_header_end(self, **headers)
            if body is not None:
                said = visitor.on_chord_body(self, **headers) or {}
                self["kwargs"]["body"] = body.stamp(visitor, append_stamps,
                                                    **collect(self, said, append_stamps, headers))
        return self

    def freeze(self, _id: str | None = None, group_id: str | None = None, **_: Any) -> AsyncResult[Any]:  # type: ignore[override]
        body = self.body
        if body is None:
            raise ValueError("chord(): no body to freeze")
        result = body.freeze(_id)
        self["kwargs"]["body"] = body
        return result

    def _parts(self, args: Sequence[Any] | None, kwargs: dict[str, Any] | None,
               options: dict[str, Any]) -> tuple[list[Signature], Signature, dict[str, Any]]:
        kwargs = dict(kwargs or {})
        body = maybe_signature(kwargs.pop("body", None), self._app) or self.body
        if body is None:
            raise ValueError("chord(): no body given (chord(header)(body) or chord(header, body))")
        body = body.clone()
        options = {**self.options, **options}
        for key in ("task_id", "link", "link_error", "chain", "chord", "group_id"):
            if key not in options:
                continue
            value = options.pop(key)
            if key in ("link", "link_error"):
                for sig in _sigs(value):
                    getattr(body, key)(sig)
            elif key == "group_id":
                continue
            else:
                body.options[key] = value
        header = [m.clone(args, kwargs or None) if (args or kwargs) else m.clone() for m in self.tasks]
        return header, body, options

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,  # type: ignore[override]
                    **options: Any) -> AsyncResult[Any]:
        from .chords import send_chord

        header, body, options = self._parts(args, kwargs, options)
        if _eager(self.app):
            return self._apply(header, body, options)
        return send_chord(self.app, header, body, options)

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,  # type: ignore[override]
              **options: Any) -> EagerResult[Any]:
        header, body, options = self._parts(args, kwargs, options)
        return self._apply(header, body, options)

    def _apply(self, header: list[Signature], body: Signature, options: dict[str, Any]) -> EagerResult[Any]:
        from .chords import apply_chord

        return apply_chord(self.app, header, body, options)

    def __repr__(self) -> str:
        return f"chord([{', '.join(repr(t) for t in self.tasks)}], {self.body!r})"


class xmap(Signature):
    """``task.map(items)``: one task message that calls ``task(item)`` for each item in turn."""

    def __init__(self, task: Any, it: Any = (), app: Celery | None = None, **options: Any) -> None:
        if isinstance(task, dict) and task.get("subtask_type") in ("xmap", "xstarmap") and not it:
            Signature.__init__(self, task, app=app)
            return
        sig = maybe_signature(task, app)
        Signature.__init__(self, self._task_name, (), {"task": sig.as_dict() if sig else None,
                                                                   "it": list(it)},
                           options, subtask_type=self._kind(), app=app or (sig._app if sig else None))

    _task_name = "celery.map"

    @classmethod
    def _kind(cls) -> str:
        return cls.__name__

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                    **options: Any) -> AsyncResult[Any]:
        task = self.app.get_task(self.task)
        return task.apply_async((self["kwargs"]["task"], self["kwargs"]["it"]), {}, **{**self.options, **options})

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
              **options: Any) -> EagerResult[Any]:
        task = self.app.get_task(self.task)
        return task.apply((self["kwargs"]["task"], self["kwargs"]["it"]), {}, **{**self.options, **options})

    def __repr__(self) -> str:
        return f"[{self['kwargs']['task']['task']}(x) for x in {self['kwargs']['it']!r}]"


class xstarmap(xmap):
    """``task.starmap(items)``: one task message that calls ``task(*item)`` for each item."""

    _task_name = "celery.starmap"


class chunks(Signature):
    """``task.chunks(items, n)``: the items split into groups of ``n`` calls, one message each
    (``task.starmap`` of each chunk); ``.group()`` gives that group to combine further."""

    def __init__(self, task: Any, it: Any = (), n: int = 1, app: Celery | None = None, **options: Any) -> None:
        if isinstance(task, dict) and task.get("subtask_type") == "chunks" and not it:
            Signature.__init__(self, task, app=app)
            return
        if int(n) < 1:
            raise ValueError(f"chunks(): the chunk size must be at least 1, not {n!r}")
        sig = maybe_signature(task, app)
        Signature.__init__(self, "celery.chunks", (), {"task": sig.as_dict() if sig else None,
                                                       "it": [list(i) for i in it], "n": int(n)},
                           options, subtask_type="chunks", app=app or (sig._app if sig else None))

    def group(self) -> group:
        items, n = self["kwargs"]["it"], self["kwargs"]["n"]
        task = self["kwargs"]["task"]
        return group([xstarmap(task, items[i:i + n], app=self._app) for i in range(0, len(items), n)],
                     app=self._app, **self.options)

    def __call__(self, **options: Any) -> GroupResult:
        return self.apply_async(**options)

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,  # type: ignore[override]
                    **options: Any) -> GroupResult:
        return self.group().apply_async(args, kwargs, **options)

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,  # type: ignore[override]
              **options: Any) -> GroupResult:
        return self.group().apply(args, kwargs, **options)


KINDS.update({"chain": chain, "group": group, "chord": chord, "xmap": xmap, "xstarmap": xstarmap,
              "chunks": chunks})
