"""The application: configuration, the task registry, and sending tasks."""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, Unpack, overload

from . import message, publish, signals
from .app_stores import AppStores
from .brokers.base import Broker
from .config import Settings, import_object
from .exceptions import ConfigurationError, NotRegistered
from .options import SendOptions
from .project import PROJECT_MARKERS as PROJECT_MARKERS  # re-exported: docs name app.PROJECT_MARKERS
from .project import creator_file
from .project import default_broker_url as default_broker_url
from .project import project_root as project_root
from .queues import describe
from .redaction import Redactor, redactor
from .signals import Signal
from .task import Task, make_task_class

if TYPE_CHECKING:
    from .backends.base import ResultBackend
    from .control import Control
    from .result import AsyncResult
    from .task_types import AsyncTask, BoundTaskDecorator, TaskDecorator, TaskOptions

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("celeriac.app")

_current: Celery | None = None
_shared_tasks: list[Callable[[Celery], Task[Any, Any]]] = []

def current_app() -> Celery:
    """The most recently created app, or a default one if none was made."""
    global _current
    if _current is None:
        _current = Celery("default")
    return _current


class Celery(AppStores):
    """A celeriac application: ``Celery('proj', broker='redis://...', include=['proj.tasks'])``."""

    def __init__(self, main: str | None = None, *, broker: str | None = None, backend: str | None = None,
                 include: Sequence[str] | None = None, config_source: Any = None,
                 set_as_current: bool = True, task_cls: type[Task[Any, Any]] | str | None = None,
                 **kwargs: Any) -> None:
        global _current
        self.main = main
        # Where the embedded default broker file is keyed from (see default_broker_url).
        self.origin = creator_file(self)
        self.conf = Settings()
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.on_after_configure = Signal("on_after_configure")
        self.on_after_finalize = Signal("on_after_finalize")
        self.task_cls: type[Task[Any, Any]] = (
            import_object(task_cls) if isinstance(task_cls, str) else task_cls or Task)
        self._broker: Broker | None = None
        self._backend: ResultBackend | None = None
        self._control: Control | None = None
        # Kept for this process's publishing (see publish.broker_clock, events.app_cap).
        self._broker_clock: Any = None
        self._event_cap: Any = None
        self._finalized = False
        self._autodiscover: list[tuple[Any, str]] = []
        if broker:
            self.conf.broker_url = broker
        if backend:
            self.conf.result_backend = backend
        if include:
            self.conf.include = list(include)
        if config_source is not None:
            self.config_from_object(config_source)
        for key, value in kwargs.items():
            if key in ("fixups", "loader", "log", "events", "amqp", "strict_typing", "autofinalize",
                       "changes", "namespace", "steps", "control", "tasks", "on_configure"):
                continue  # Celery's plumbing hooks: nothing to plug here
            self.conf[key] = value
        for factory in _shared_tasks:
            factory(self)
        if set_as_current:
            _current = self

    # -- configuration --------------------------------------------------------------------
    def config_from_object(self, obj: Any, namespace: str | None = None, silent: bool = False,
                           force: bool = False) -> None:
        """Load settings from a module, class, dict or dotted path; ``namespace='CELERY'`` reads
        Django-style ``CELERY_TASK_TIME_LIMIT`` names."""
        try:
            self.conf.load_object(obj, namespace=namespace)
        except ImportError:
            if not silent:
                raise
        self._reset_connections()

    def config_from_envvar(self, variable_name: str, silent: bool = False, force: bool = False) -> None:
        module = os.environ.get(variable_name)
        if not module:
            if silent:
                return
            raise ConfigurationError(f"environment variable {variable_name!r} is not set")
        self.config_from_object(module, silent=silent)

    @property
    def default_queue(self) -> str:
        return str(self.conf.task_default_queue)

    @property
    def control(self) -> Control:
        if self._control is None:
            from .control import Control

            self._control = Control(self)
        return self._control

    @property
    def redactor(self) -> Redactor:
        """Hides the arguments named in ``task_redact_args`` wherever arguments are shown."""
        return redactor(self.conf.task_redact_args)

    @property
    def signing_key(self) -> bytes | None:
        key = self.conf.task_message_signing_key
        return key.encode() if isinstance(key, str) else key

    def queues(self) -> list[str]:
        """The queues a worker reads when not told otherwise (``task_queues``, else the default)."""
        configured = self.conf.task_queues
        if not configured:
            return [self.default_queue]
        if isinstance(configured, dict):
            return list(configured)
        return [describe(q)[0] for q in configured]

    def now(self) -> datetime:
        return datetime.now(UTC)

    @property
    def timezone(self) -> Any:
        """The ``timezone`` setting as a tzinfo (UTC when unset), as Celery's ``app.timezone``."""
        from .timezones import zone

        return zone(self.conf.timezone, self.conf.enable_utc)

    @property
    def current_task(self) -> Task[Any, Any] | None:
        """The task this thread is running or calling directly (None outside one)."""
        stack = Task._requests.stack
        return self.tasks.get(stack[-1].task or "") if stack else None

    @property
    def current_worker_task(self) -> Task[Any, Any] | None:
        """The task this thread runs for a worker (or eagerly), not one merely called as a function."""
        for request in reversed(Task._requests.stack):
            if not request.called_directly:
                return self.tasks.get(request.task or "")
        return None

    @staticmethod
    def now_ts() -> float:
        return time.time()

    # -- tasks ----------------------------------------------------------------------------
    # Typed so a task's calls check against its function: see task_types.py.
    @overload
    def task(self, fun: Callable[P, Coroutine[Any, Any, R]], /, *, name: str | None = None,
             base: type[Task[Any, Any]] | None = None, **options: Unpack[TaskOptions]) -> AsyncTask[P, R]: ...

    @overload
    def task(self, fun: Callable[P, R], /, *, name: str | None = None, base: type[Task[Any, Any]] | None = None,
             **options: Unpack[TaskOptions]) -> Task[P, R]: ...

    @overload
    def task(self, /, *, bind: Literal[True], name: str | None = None, base: type[Task[Any, Any]] | None = None,
             **options: Unpack[TaskOptions]) -> BoundTaskDecorator: ...

    @overload
    def task(self, /, *, bind: Literal[False] = False, name: str | None = None,
             base: type[Task[Any, Any]] | None = None, **options: Unpack[TaskOptions]) -> TaskDecorator: ...

    @overload
    def task(self, /, *, bind: bool, name: str | None = None, base: type[Task[Any, Any]] | None = None,
             **options: Unpack[TaskOptions]) -> Callable[[Callable[..., Any]], Task[..., Any]]: ...

    def task(self, fun: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Declare a task: ``@app.task`` or ``@app.task(bind=True, max_retries=3, ...)``."""
        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            return self._register(f, options)

        return register(fun) if fun is not None else register

    def _register(self, fun: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
        name = options.get("name") or self.gen_task_name(fun.__name__, fun.__module__)
        base = options.get("base") or self.task_cls
        cls = make_task_class(fun, base, {**options, "name": name})
        task: Task[Any, Any] = cls()
        task.app = self
        existing = getattr(type(self.tasks.get(name)), "__wrapped__", fun)
        if existing is not fun:  # the same function imported twice is no clash; two functions are
            import warnings

            from .exceptions import DuplicateTaskNameWarning

            warnings.warn(DuplicateTaskNameWarning(
                f"task {name!r} was {existing.__module__}.{existing.__qualname__}; now "
                f"{fun.__module__}.{fun.__qualname__} replaces it (give one of them name=...)"), stacklevel=3)
        self.tasks[name] = task
        return task

    def gen_task_name(self, name: str, module: str) -> str:
        if module == "__main__" and self.main:
            module = self.main
        return f"{module}.{name}"

    def register_task(self, task: Task[Any, Any] | type[Task[Any, Any]]) -> Task[Any, Any]:
        instance = task() if isinstance(task, type) else task
        instance.app = self
        self.tasks[instance.name] = instance
        return instance

    def get_task(self, name: str) -> Task[Any, Any]:
        task = self.tasks.get(name)
        if task is None and not self._finalized:
            self.finalize()
            task = self.tasks.get(name)
        if task is None and name.startswith(("celery.", "celeriac.")):
            from .canvas.builtins import builtin_task

            task = builtin_task(self, name)
        if task is None:
            from .config import suggest

            raise NotRegistered(f"unknown task {name!r}{suggest(name, self.tasks)}")
        return task

    # -- modules ----------------------------------------------------------------------------
    def autodiscover_tasks(self, packages: Iterable[str] | Callable[[], Iterable[str]] | None = None,
                           related_name: str = "tasks", force: bool = False) -> None:
        """Import ``<package>.tasks`` for each package (Django's INSTALLED_APPS when omitted),
        when the app is finalized (``force=True``: now)."""
        self._autodiscover.append((packages, related_name))
        if force:
            self._run_autodiscover()

    def _run_autodiscover(self) -> None:
        pending, self._autodiscover = self._autodiscover, []
        for packages, related_name in pending:
            if packages is None:
                try:
                    from django.conf import settings  # type: ignore[import-not-found]

                    packages = list(settings.INSTALLED_APPS)
                except Exception:
                    packages = []
            elif callable(packages):
                packages = list(packages())
            for package in packages:
                module = f"{package}.{related_name}"
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as exc:
                    if exc.name not in (module, package):  # the module exists but its import failed
                        raise

    def finalize(self) -> None:
        """Import configured modules and discovered tasks; fire ``on_after_configure``."""
        if self._finalized:
            return
        self._finalized = True
        for module in [*self.conf.imports, *self.conf.include]:
            importlib.import_module(module)
        self._run_autodiscover()
        self.on_after_configure.send(sender=self)
        self.on_after_finalize.send(sender=self)

    # -- periodic tasks (read by beat) --------------------------------------------------------
    def add_periodic_task(self, schedule: Any, sig: Any, args: Sequence[Any] = (),
                          kwargs: dict[str, Any] | None = None, name: str | None = None, **opts: Any) -> str:
        """Add an entry to ``beat_schedule``: ``add_periodic_task(10.0, ping.s('x'), name='ping')``."""
        task_name = sig["task"] if isinstance(sig, dict) else getattr(sig, "name", sig)  # a signature or a task
        entry_args = tuple(getattr(sig, "args", ()) or args)
        entry_kwargs = dict(getattr(sig, "kwargs", {}) or kwargs or {})
        options = {**getattr(sig, "options", {}), **opts}
        key = name or f"{task_name}({', '.join(map(repr, entry_args))})"
        schedule_table = dict(self.conf.beat_schedule)
        schedule_table[key] = {"task": task_name, "schedule": schedule, "args": entry_args,
                               "kwargs": entry_kwargs, "options": options}
        self.conf.beat_schedule = schedule_table
        return key

    # -- sending ----------------------------------------------------------------------------
    def route(self, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Where ``task_routes`` sends this call: ``{"queue": ..., "priority": ...}`` or ``{}``."""
        return publish.route(self, name, args, kwargs)

    def send_task(self, name: str, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                  *, task: Task[Any, Any] | None = None, send_options: SendOptions | None = None,
                  **options: Any) -> AsyncResult[Any]:
        """Send a task by name; the sender needs no code for it (``send_task('add', args=[2, 2])``).

        Takes Celery's sending keywords (``countdown``, ``eta``, ``expires``, ``queue``,
        ``link``, ...; see :class:`~celeriac.options.SendOptions`), or ``send_options`` already
        built (then keywords given as well take precedence)."""
        from .result import AsyncResult

        opts = SendOptions.of(name, options) if send_options is None else send_options.merged(name, options)
        envelope, delay = publish.build_envelope(self, name, args, kwargs, opts, task=task)
        retry, retry_policy = opts.retry, opts.retry_policy
        serializer = opts.serializer or (task and task.serializer) or self.conf.task_serializer
        if signals.before_task_publish.receivers:
            publish.before_publish(envelope, retry_policy)
        body = message.encode(envelope, serializer=serializer, signing_key=self.signing_key)
        publish.check_size(self, name, body)
        publish.publish(self, [(envelope.queue, body, envelope.priority, delay, envelope.id)], retry, retry_policy)
        if signals.after_task_publish.receivers:
            publish.after_publish(envelope)
        if self.conf.task_send_sent_event:
            publish.sent_event(self, envelope)
        result: AsyncResult[Any] = AsyncResult(envelope.id, app=self, task_name=name)
        result._ignored = envelope.ignore_result
        return result

    def send_many(self, name: str, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]],
                  **options: Any) -> list[AsyncResult[Any]]:
        """Send many calls of one task in one round trip: ``[(args, kwargs), ...]``."""
        from .result import AsyncResult

        task = self.tasks.get(name)
        opts = SendOptions.of(name, options)
        serializer = opts.serializer or (task and task.serializer) or self.conf.task_serializer
        signing_key = self.signing_key
        # What does not depend on the arguments is worked out once for the whole batch.
        fixed = None if callable(self.conf.task_routes) else publish.call_defaults(self, name, task, (), {}, {
            "queue": opts.queue, "priority": opts.priority, "ignore_result": opts.ignore_result,
            "expires": opts.expires, "routing_key": opts.routing_key})
        sent_events = self.conf.task_send_sent_event
        publish_signals = bool(signals.before_task_publish.receivers or signals.after_task_publish.receivers)
        if fixed is not None and serializer == "json" and not sent_events and not publish_signals:
            # The common case: one envelope built and checked in full, then encoded once as a
            # template; each call only fills in its id and arguments (no Envelope per call).
            template, delay = publish.build_envelope(self, name, (), {}, opts, task=task, fixed=fixed)
            encoder = message.TemplateEncoder(template, signing_key)
            queue, priority = template.queue, template.priority
            calls = list(calls)
            ids = publish.new_task_ids(len(calls))
            check = publish.check_arguments
            bodies = []
            for (args, kwargs), task_id in zip(calls, ids, strict=True):
                check(name, args, kwargs)
                bodies.append(encoder.encode(task_id, args, kwargs))
            for body in bodies:
                publish.check_size(self, name, body)
            publish.publish(self, publish.Batch(queue, priority, delay, bodies, ids), None, None)
            return [AsyncResult(task_id, app=self, task_name=name) for task_id in ids]
        items = []
        envelopes = []
        for args, kwargs in calls:
            envelope, delay = publish.build_envelope(self, name, args, kwargs, opts, task=task, fixed=fixed)
            if signals.before_task_publish.receivers:
                publish.before_publish(envelope, None)
            body = message.encode(envelope, serializer=serializer, signing_key=signing_key)
            publish.check_size(self, name, body)
            items.append((envelope.queue, body, envelope.priority, delay, envelope.id))
            envelopes.append(envelope)
        publish.publish(self, items, None, None)
        if signals.after_task_publish.receivers:
            for envelope in envelopes:
                publish.after_publish(envelope)
        if sent_events:
            for envelope in envelopes:
                publish.sent_event(self, envelope)
        return [AsyncResult(envelope.id, app=self, task_name=name) for envelope in envelopes]

    def signature(self, name: Any, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                  **options: Any) -> Any:
        """A signature of the task ``name`` (which this process need not have): Celery's
        ``app.signature('tasks.add', args=(2, 2), countdown=10)``."""
        from .canvas import signature

        return signature(name, args, kwargs, options, app=self)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult[Any]:
        from .result import AsyncResult

        return AsyncResult(task_id, app=self, **kwargs)

    def GroupResult(self, group_id: str | None = None, results: Iterable[Any] = ()) -> Any:
        from .result import GroupResult

        return GroupResult(group_id, results, app=self)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()
        if self._backend is not None:
            self._backend.close()
        self._reset_connections()

    def worker_main(self, argv: Sequence[str] | None = None) -> None:
        from .cli import main

        main(["-A", _AppRef(self), *(argv or ["worker"])])

    start = worker_main

    def __repr__(self) -> str:
        return f"<Celery {self.main or '__main__'}>"


class _AppRef(str):
    """Lets ``app.worker_main()`` hand the CLI an app object where it expects a module path."""

    app: Celery

    def __new__(cls, app: Celery) -> _AppRef:
        ref = super().__new__(cls, app.main or "__main__")
        ref.app = app
        return ref


# Typed as the task it stands for (the stand-in forwards every call and attribute to it).
@overload
def shared_task(fun: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...


@overload
def shared_task(fun: Callable[P, R], /) -> Task[P, R]: ...


@overload
def shared_task(*, bind: Literal[True], name: str | None = None, base: type[Task[Any, Any]] | None = None,
                **options: Unpack[TaskOptions]) -> BoundTaskDecorator: ...


@overload
def shared_task(*, bind: Literal[False] = False, name: str | None = None, base: type[Task[Any, Any]] | None = None,
                **options: Unpack[TaskOptions]) -> TaskDecorator: ...


@overload
def shared_task(*, bind: bool, name: str | None = None, base: type[Task[Any, Any]] | None = None,
                **options: Unpack[TaskOptions]) -> Callable[[Callable[..., Any]], Task[..., Any]]: ...


def shared_task(*args: Any, **options: Any) -> Any:
    """Declare a task that belongs to whichever app is current when it is used (Django apps)."""
    def decorate(fun: Callable[..., Any]) -> Any:
        name = options.get("name")

        def factory(app: Celery) -> Task[Any, Any]:
            existing = app.tasks.get(name or app.gen_task_name(fun.__name__, fun.__module__))
            return existing or app._register(fun, options)

        _shared_tasks.append(factory)
        if _current is not None:
            factory(_current)
        return _SharedTask(factory, fun)

    if len(args) == 1 and callable(args[0]) and not options:
        return decorate(args[0])
    return decorate


class _SharedTask:
    """Stands for a shared task; each use goes to the task registered on the current app."""

    def __init__(self, factory: Callable[[Celery], Task[Any, Any]], fun: Callable[..., Any]) -> None:
        self._factory = factory
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self.__name__ = fun.__name__

    def _task(self) -> Task[Any, Any]:
        return self._factory(current_app())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task(), name)

    def __repr__(self) -> str:
        return f"<@shared_task: {self.__name__}>"
