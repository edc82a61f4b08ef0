"""Handles on task results: AsyncResult, EagerResult and GroupResult."""

from __future__ import annotations

import builtins
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from . import states
from .exceptions import IncompleteStream, RemoteTaskError, ResultTimeout, TaskRevoked

if TYPE_CHECKING:
    from .app import Celery
    from .backends.base import Meta, ResultBackend

R = TypeVar("R")

_rebuilt: dict[tuple[str, str], type[BaseException]] = {}


def rebuild_exception(meta: Meta) -> BaseException:
    """Turn a stored failure back into an exception without importing anything by name.

    The type name is data. A builtin exception name yields a class deriving from both
    RemoteTaskError and that builtin, so ``except ValueError`` and ``except RemoteTaskError``
    both catch it; any other name yields a RemoteTaskError subclass carrying that name.
    """
    type_name = str(meta.get("exc_type") or "Exception")
    module = str(meta.get("exc_module") or "builtins")
    message = meta.get("exc_message")
    if message is None:
        message = meta.get("result") if isinstance(meta.get("result"), str) else ""
    cls = _rebuilt.get((module, type_name))
    if cls is None:
        builtin = getattr(builtins, type_name, None) if module == "builtins" else None
        bases: tuple[type, ...] = (RemoteTaskError,)
        if isinstance(builtin, type) and issubclass(builtin, Exception):
            bases = (RemoteTaskError, builtin)
        try:
            cls = type(type_name, bases, {"remote_type": type_name, "remote_module": module,
                                          "__module__": module})
        except TypeError:  # layout conflicts (OSError subclasses); the plain remote class still names it
            cls = type(type_name, (RemoteTaskError,), {"remote_type": type_name, "remote_module": module})
        _rebuilt[(module, type_name)] = cls
    exc = cls(*message) if isinstance(message, list) else cls(message)
    exc.remote_traceback = meta.get("traceback")  # type: ignore[attr-defined]
    return exc


class AsyncResult(Generic[R]):
    """The state and outcome of one task, read from the result store.

    ``R`` is what the task returns, so ``add.delay(2, 2).get()`` type-checks as ``int``."""

    # No per-instance dict: send_many makes tens of thousands of these at once.
    __slots__ = ("__weakref__", "_backend", "_cache", "_ignored", "app", "id", "parent", "task_id", "task_name")

    def __init__(self, id: str, app: Celery | None = None, backend: ResultBackend | None = None,
                 task_name: str | None = None) -> None:
        if app is None:
            from .app import current_app

            app = current_app()
        self.id = id
        self.task_id = id
        self.app = app
        self._backend = backend
        self.task_name = task_name
        self._cache: Meta | None = None
        self._ignored = False
        #: The result of the step before this one in a chain (set when the chain is sent).
        self.parent: AsyncResult[Any] | GroupResult | None = None

    @property
    def backend(self) -> ResultBackend:
        return self._backend or self.app.backend

    @property
    def ignored(self) -> bool:
        """True when the task was sent with ignore_result: nothing will be stored, so ``get()``
        returns None at once instead of waiting for its timeout (Celery's behaviour)."""
        return self._ignored

    @ignored.setter
    def ignored(self, value: bool) -> None:
        self._ignored = bool(value)

    # -- reading --------------------------------------------------------------------------
    def _meta(self) -> Meta:
        if self._cache is not None:
            return self._cache
        meta = self.backend.get_meta(self.id)
        if meta["status"] in states.READY_STATES:
            self._cache = meta  # a ready state never changes; don't ask again
        return meta

    @property
    def state(self) -> str:
        return str(self._meta()["status"])

    status = state

    @property
    def info(self) -> Any:
        """The result on success, the exception on failure, the meta dict of a custom state."""
        meta = self._meta()
        if meta["status"] in states.EXCEPTION_STATES and (meta.get("exc_type") or meta["status"] != states.RETRY):
            return rebuild_exception(meta)
        return meta.get("result")

    result = info

    @property
    def traceback(self) -> str | None:
        return self._meta().get("traceback")

    @property
    def date_done(self) -> datetime | None:
        value = self._meta().get("date_done")
        return datetime.fromisoformat(value) if value else None

    @property
    def name(self) -> str | None:
        return self._meta().get("name") or self.task_name

    @property
    def args(self) -> Any:
        return self._meta().get("args")

    @property
    def kwargs(self) -> Any:
        return self._meta().get("kwargs")

    @property
    def retries(self) -> int | None:
        return self._meta().get("retries")

    @property
    def worker(self) -> str | None:
        return self._meta().get("worker")

    @property
    def queue(self) -> str | None:
        """The queue the task was taken from (stored with ``result_extended``)."""
        return self._meta().get("queue")

    @property
    def children(self) -> list[AsyncResult[Any]]:
        """Results of the tasks this one sent while it ran (stored with its result)."""
        return [AsyncResult(i, app=self.app) for i in self._meta().get("children") or ()]

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            disable_sync_subtasks: bool = True, **_: Any) -> R:
        """Wait until the task is ready and return its result.

        Wakes on the store's notification (no polling loop). Raises ResultTimeout (a
        TimeoutError) after ``timeout`` seconds, and re-raises the task's exception when
        ``propagate`` and it failed.
        """
        if self._ignored:
            return cast("R", None)
        meta = self._cache or self.backend.wait_for(self.id, timeout)
        if meta is None:
            raise ResultTimeout(f"The operation timed out: task {self.id} not ready after {timeout}s")
        self._cache = meta
        status = meta["status"]
        # The stored result is what the task's return annotation promised (R); with
        # propagate=False a failure gives back its exception instead, typed R as in celery-types.
        if status == states.SUCCESS:
            return cast("R", meta.get("result"))
        if status == states.REVOKED:
            if propagate:
                raise TaskRevoked(f"task {self.id} was revoked: {meta.get('result') or meta.get('exc_message')}")
            return cast("R", meta.get("result"))
        error = rebuild_exception(meta)
        if propagate:
            raise error
        return cast("R", error)

    wait = get

    def forget(self) -> None:
        self._cache = None
        self.backend.forget(self.id)

    def revoke(self, terminate: bool = False, signal: str | int = "SIGTERM", **kwargs: Any) -> None:
        self.app.control.revoke(self.id, terminate=terminate, signal=signal, **kwargs)

    def revoke_by_stamped_headers(self, headers: dict[str, Any], terminate: bool = False,
                                  signal: str | int | None = None, wait: bool = False,
                                  timeout: float | None = None, **_: Any) -> None:
        """Revoke every task stamped with ``headers`` (not only this one), as
        ``app.control.revoke_by_stamped_headers`` does; ``wait`` for the workers' replies."""
        self.app.control.revoke_by_stamped_headers(headers, terminate=terminate, signal=signal or "SIGTERM",
                                                   reply=wait, timeout=1.0 if timeout is None else timeout)

    def maybe_throw(self, propagate: bool = True, callback: Any = None) -> Any:
        """Without waiting: raise the task's exception if it failed or was revoked (when
        ``propagate``), else return its result so far, passing ``(id, value)`` to ``callback``."""
        meta = self._meta()
        status = meta["status"]
        if propagate and status == states.REVOKED:
            raise TaskRevoked(f"task {self.id} was revoked: {meta.get('result') or meta.get('exc_message')}")
        if propagate and status in states.PROPAGATE_STATES:
            raise rebuild_exception(meta)
        value = meta.get("result")
        if callback is not None:
            callback(self.id, value)
        return value

    maybe_reraise = maybe_throw

    def exists(self) -> bool:
        """Whether the store knows the task (any state but PENDING, which unknown ids report)."""
        return self.state != states.PENDING

    def iterdeps(self, intermediate: bool = False) -> Iterator[tuple[AsyncResult[Any] | None, AsyncResult[Any]]]:
        """``(parent, result)`` for this result and, breadth first, every task sent from it
        (``children``). A result not ready when its children are needed raises IncompleteStream,
        unless ``intermediate``, which skips its children."""
        queue: deque[tuple[AsyncResult[Any] | None, AsyncResult[Any]]] = deque([(None, self)])
        while queue:
            parent, node = queue.popleft()
            yield parent, node
            if node.ready():
                queue.extend((node, child) for child in node.children)
            elif not intermediate:
                raise IncompleteStream(f"task {node.id} is not ready, so its children are unknown yet")

    def collect(self, intermediate: bool = False, **kwargs: Any) -> Iterator[tuple[AsyncResult[Any], Any]]:
        """``(result, value)`` for this result and every task sent from it, waiting for each
        (``kwargs`` go to ``get``): follows a task that fans out (or replaces itself) to the end."""
        for _, node in self.iterdeps(intermediate=intermediate):
            yield node, node.get(**kwargs)

    def get_leaf(self) -> Any:
        """The value of the last result :meth:`iterdeps` reaches."""
        value = None
        for _, node in self.iterdeps():
            value = node.get()
        return value

    def as_tuple(self) -> tuple[str, None]:
        return (self.id, None)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"


class EagerResult(AsyncResult[R]):
    """The outcome of ``Task.apply()`` (or any call in ``task_always_eager`` mode)."""

    def __init__(self, id: str, meta: Meta, app: Celery | None = None) -> None:
        super().__init__(id, app=app)
        self._cache = meta

    def _meta(self) -> Meta:
        assert self._cache is not None
        return self._cache

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            disable_sync_subtasks: bool = True, **kwargs: Any) -> R:
        return super().get(timeout=timeout, propagate=propagate)

    def forget(self) -> None:
        pass


class ResultSet:
    """Several results handled together: ``ResultSet([r1, r2]).get()`` returns their values in order."""

    def __init__(self, results: Iterable[AsyncResult[Any]] = (), app: Celery | None = None, **_: Any) -> None:
        self.results = list(results)
        self.app = app
        self.parent: Any = None

    @property
    def backend(self) -> ResultBackend:
        if self.app is not None:
            return self.app.backend
        from .app import current_app

        return current_app().backend

    def maybe_throw(self, propagate: bool = True, callback: Any = None) -> None:
        """Raise the first failed or revoked member's exception (when ``propagate``), without
        waiting; passes each member's ``(id, value)`` to ``callback``."""
        for result in self.results:
            result.maybe_throw(propagate=propagate, callback=callback)

    maybe_reraise = maybe_throw

    def add(self, result: AsyncResult[Any]) -> None:
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: AsyncResult[Any] | str) -> None:
        self.results.remove(result)  # type: ignore[arg-type]

    def discard(self, result: AsyncResult[Any] | str) -> None:
        if result in self.results:
            self.results.remove(result)  # type: ignore[arg-type]

    def update(self, results: Iterable[AsyncResult[Any]]) -> None:
        self.results.extend(r for r in results if r not in self.results)

    def clear(self) -> None:
        self.results.clear()

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return any(not r.ready() for r in self.results)

    def completed_count(self) -> int:
        """How many finished successfully (Celery's meaning)."""
        return sum(1 for r in self.results if r.successful())

    def forget(self) -> None:
        for result in self.results:
            result.forget()

    def revoke(self, terminate: bool = False, signal: str | int = "SIGTERM", **kwargs: Any) -> None:
        for result in self.results:
            result.revoke(terminate=terminate, signal=signal, **kwargs)

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            callback: Any = None, **_: Any) -> list[Any]:
        """Wait for every result, in order; ``timeout`` bounds the whole wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            value = result.get(timeout=remaining, propagate=propagate)
            if callback is not None:
                callback(result.id, value)
            else:
                values.append(value)
        return values

    join = get
    join_native = get

    def __iter__(self) -> Any:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        return self.results[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(r.id for r in self.results)}]>"


def _group_key(group_id: str) -> str:
    return f"celeriac-group-{group_id}"


class GroupResult(ResultSet):
    """The results of a group, under the group's id: ``.save()`` stores which tasks it holds so
    ``GroupResult.restore(id)`` finds them again in another process."""

    def __init__(self, id: str | None = None, results: Iterable[AsyncResult[Any]] = (),
                 app: Celery | None = None, parent: Any = None, **_: Any) -> None:
        super().__init__(results, app=app)
        self.id = id
        self.parent = parent

    def _app(self) -> Celery:
        if self.app is not None:
            return self.app
        from .app import current_app

        return current_app()

    def save(self, backend: ResultBackend | None = None) -> GroupResult:
        from . import message

        backend = backend or self._app().backend
        backend.write([(_group_key(self.id or ""), message.dumps({"results": [r.id for r in self.results]}),
                        False)])
        return self

    @classmethod
    def restore(cls, id: str, backend: ResultBackend | None = None, app: Celery | None = None) -> GroupResult | None:
        """The group saved under ``id``, or None if nothing was saved (or it expired)."""
        from . import message

        if app is None:
            from .app import current_app

            app = current_app()
        data = (backend or app.backend).read(_group_key(id))
        if data is None:
            return None
        return cls(id, [AsyncResult(i, app=app) for i in message.loads(data)["results"]], app=app)

    def delete(self, backend: ResultBackend | None = None) -> None:
        (backend or self._app().backend).delete(_group_key(self.id or ""))

    @property
    def children(self) -> list[AsyncResult[Any]]:
        return self.results

    def as_tuple(self) -> tuple[Any, ...]:
        return ((self.id, None), [r.as_tuple() for r in self.results])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"
