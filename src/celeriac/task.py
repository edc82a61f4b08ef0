"""Tasks: the decorator's product, how they are called, and what they see while running."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar

from . import states
from .canvas.signature import Signature
from .exceptions import MaxRetriesExceededError, Retry
from .message import Envelope
from .options import SendOptions, as_signatures

if TYPE_CHECKING:
    from .app import Celery
    from .result import AsyncResult, EagerResult

P = ParamSpec("P")
R = TypeVar("R")


class Context:
    """``self.request`` inside a task: what the worker knows about this run."""

    id: str | None = None
    task: str | None = None
    args: list[Any] | tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    hostname: str | None = None
    delivery_info: dict[str, Any] = {}
    is_eager: bool = False
    called_directly: bool = True
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    headers: dict[str, Any] = {}
    origin: str | None = None
    time_limit: tuple[float | None, float | None] = (None, None)
    ignore_result: bool = False
    envelope: Envelope | None = None

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @property
    def stamped_headers(self) -> list[str]:
        """The names of the stamps this task's message carries (``Signature.stamp``)."""
        return list(self.headers.get("stamped_headers") or ())

    @property
    def stamps(self) -> dict[str, Any]:
        """The stamps this task's message carries: name -> value."""
        stamps = self.headers.get("stamps") or {}
        return {name: stamps.get(name) for name in self.stamped_headers}

    def __repr__(self) -> str:
        return f"<Context id={self.id} task={self.task} retries={self.retries}>"


_EMPTY = Context()


_STACK: ContextVar[list[Context] | None] = ContextVar("celeriac_request_stack", default=None)


class _RequestStack:
    """The requests being run, innermost last. Kept in a context variable rather than a
    thread-local: an asyncio pool runs many tasks in one thread, each in its own asyncio task
    (see :func:`fresh_request_stack`)."""

    @property
    def stack(self) -> list[Context]:
        stack = _STACK.get()
        if stack is None:
            stack = []
            _STACK.set(stack)
        return stack


def fresh_request_stack() -> None:
    """Give the calling asyncio task its own request stack: a copied context still shares the
    list its parent held."""
    _STACK.set([])


class Task(Generic[P, R]):
    """A unit of work with Celery's attributes. ``@app.task`` makes one per function."""

    name: str = ""
    app: Celery
    typing: bool = True
    bind: bool = False
    max_retries: int | None = 3
    default_retry_delay: float = 180
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    retry_kwargs: dict[str, Any] = {}
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600
    retry_jitter: bool = True
    rate_limit: str | int | float | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    acks_late: bool | None = None
    acks_on_failure_or_timeout: bool | None = None
    reject_on_worker_lost: bool | None = None
    ignore_result: bool | None = None
    store_errors_even_if_ignored: bool | None = None
    track_started: bool | None = None
    queue: str | None = None
    priority: int | None = None
    expires: float | datetime | None = None
    serializer: str | None = None
    #: Exceptions the task is expected to raise: logged at INFO without a traceback, as Celery's.
    throws: tuple[type[BaseException], ...] = ()
    #: Options a subclass or decorator may set, checked so a typo is an error, not silence.
    OPTIONS: ClassVar[frozenset[str]] = frozenset({
        "name", "bind", "max_retries", "default_retry_delay", "autoretry_for", "dont_autoretry_for",
        "retry_kwargs", "retry_backoff", "retry_backoff_max", "retry_jitter", "rate_limit", "time_limit",
        "soft_time_limit", "acks_late", "acks_on_failure_or_timeout", "reject_on_worker_lost",
        "ignore_result", "store_errors_even_if_ignored", "track_started", "queue", "priority", "expires",
        "serializer", "typing", "base", "shared", "trail", "send_events", "throws", "routing_key",
        "exchange", "lazy", "pydantic", "filter",
    })

    #: Whether ``run`` is a coroutine function (``async def``), set when the class is made.
    is_async: ClassVar[bool] = False

    _requests = _RequestStack()
    #: Celery's ``self.MaxRetriesExceededError``, for ``except self.MaxRetriesExceededError``.
    MaxRetriesExceededError = MaxRetriesExceededError

    @property
    def backend(self) -> Any:
        """The app's result store, as Celery's ``Task.backend``."""
        return self.app.backend

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None:
            cls.is_async = inspect.iscoroutinefunction(getattr(run, "__func__", run))

    # -- running --------------------------------------------------------------------------
    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        raise NotImplementedError(f"task {self.name!r} has no run()")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        stack = self._requests.stack
        if not stack or stack[-1].task != self.name:
            stack.append(Context(task=self.name, args=args, kwargs=kwargs, called_directly=True))
            try:
                return self.run(*args, **kwargs)
            finally:
                stack.pop()
        return self.run(*args, **kwargs)

    @property
    def request(self) -> Context:
        stack = _STACK.get()
        return stack[-1] if stack else _EMPTY

    def push_request(self, context: Context) -> None:
        stack = _STACK.get()
        if stack is None:
            stack = []
            _STACK.set(stack)
        stack.append(context)

    def pop_request(self) -> None:
        stack = _STACK.get()
        if stack:
            stack.pop()

    # -- calling --------------------------------------------------------------------------
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Run asynchronously with these arguments: ``apply_async(args, kwargs)``."""
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None, *,
                    countdown: float | None = None, eta: datetime | float | None = None,
                    expires: float | datetime | None = None, priority: int | None = None,
                    queue: str | None = None, task_id: str | None = None, retry: bool | None = None,
                    retry_policy: dict[str, Any] | None = None, headers: dict[str, Any] | None = None,
                    ignore_result: bool | None = None, time_limit: float | None = None,
                    soft_time_limit: float | None = None, link: Any = None, link_error: Any = None,
                    **options: Any) -> AsyncResult[R]:
        """Send this task to a worker. Returns at once with an AsyncResult.

        Once this returns, the message is stored in the broker and will run at least once
        (unless it expires or is revoked). ``link`` / ``link_error``: signatures called with
        the result on success / when it fails (Celery's callbacks and errbacks).
        """
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(args, kwargs, task_id=task_id, headers=headers, link=link,
                              link_error=link_error, **options)
        # Built straight from the keywords (no dict of them): every delay() passes here.
        opts = SendOptions(countdown=countdown, eta=eta, expires=expires, priority=priority, queue=queue,
                           task_id=task_id, retry=retry, retry_policy=retry_policy, headers=headers,
                           ignore_result=ignore_result, time_limit=time_limit, soft_time_limit=soft_time_limit,
                           link=as_signatures(link), link_error=as_signatures(link_error))
        if options:
            opts = opts.merged(self.name, options)
        return app.send_task(self.name, args, kwargs, task=self, send_options=opts)

    def apply(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None, *,
              task_id: str | None = None, throw: bool | None = None, retries: int = 0,
              headers: dict[str, Any] | None = None, **options: Any) -> EagerResult[R]:
        """Run here and now, in this process, as a worker would (retries, links and chains included)."""
        from .eager import apply_eagerly

        return apply_eagerly(self, list(args or ()), dict(kwargs or {}), task_id=task_id, throw=throw,
                             retries=retries, headers=headers or {}, options=options)

    # -- canvas ---------------------------------------------------------------------------
    def add_to_chord(self, sig: Signature, lazy: bool = False) -> Signature | AsyncResult[Any]:
        """From a running chord header task: make ``sig`` one more member of its chord (the body
        waits for it too, and gets its result last) and send it, or with ``lazy`` only prepare it
        (``sig.delay()`` sends it). ValueError outside a chord's header."""
        from .canvas.chords import add_to_chord

        return add_to_chord(self, sig, lazy)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: ``add.s(2)`` (call-time arguments go before these)."""
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: call-time arguments (a chain's previous result) are ignored."""
        return Signature(self, args, kwargs, immutable=True)

    def signature(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                  **options: Any) -> Signature:
        immutable = bool(options.pop("immutable", False))
        return Signature(self, tuple(args or ()), dict(kwargs or {}), options, immutable=immutable)

    subtask = signature

    def map(self, it: Any) -> Any:
        """One message calling this task for each item: ``add_one.map([1, 2, 3])``."""
        from .canvas import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Any) -> Any:
        """One message calling this task with each item's arguments: ``add.starmap([(1, 2)])``."""
        from .canvas import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Any, n: int) -> Any:
        """The items split into messages of ``n`` calls each (a group of starmaps)."""
        from .canvas import chunks

        return chunks(self.s(), it, n, app=self.app)

    def replace(self, sig: Any) -> Any:
        """Replace this running task with ``sig``: it takes over this task's id, callbacks,
        chain and chord, and this task ends without a result of its own (Celery's
        ``Task.replace``). Raises Ignore; in eager mode returns the replacement's result."""
        from .canvas import chord, group, maybe_signature

        request = self.request
        sig = maybe_signature(sig, self.app)
        if isinstance(sig, group) and not isinstance(sig, chord):
            sig = chord(sig, self.app.get_task("celery.accumulate").s(), app=self.app)
        envelope = request.envelope
        flow = envelope.flow if envelope is not None else None
        if request.is_eager or envelope is None:
            return self.on_replace(sig)
        options: dict[str, Any] = {"task_id": request.id, "group_id": request.group, "root_id": request.root_id,
                                   "parent_id": request.parent_id}
        if flow is not None:
            options.update(link=list(flow.link) or None, link_error=list(flow.link_error) or None,
                           chain=list(flow.chain) or None, chord=flow.chord)
        return self.on_replace(sig.set(**{k: v for k, v in options.items() if v is not None}))

    def on_replace(self, sig: Any) -> Any:
        """Called by ``replace`` with the replacement, already given this task's id, callbacks
        and chord: sends it and raises Ignore (in eager mode runs it and returns its result). An
        override (Celery's hook, e.g. to log or stamp) must end with ``super().on_replace(sig)``."""
        from .exceptions import Ignore

        if self.request.is_eager or self.request.envelope is None:
            return sig.apply().get()
        sig.apply_async()
        raise Ignore()

    def AsyncResult(self, task_id: str) -> AsyncResult[R]:
        from .result import AsyncResult

        return AsyncResult(task_id, app=self.app)

    # -- inside a task --------------------------------------------------------------------
    def retry(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
              exc: BaseException | None = None, throw: bool = True, eta: datetime | float | None = None,
              countdown: float | None = None, max_retries: int | None = None, **options: Any) -> Retry:
        """Run this task again later. Raises Retry (the worker records RETRY and re-sends it).

        Past ``max_retries`` it re-raises ``exc`` (or MaxRetriesExceededError), as Celery does.
        """
        request = self.request
        if request.called_directly:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(f"task {self.name!r} called directly cannot retry")
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            args_shown, kwargs_shown = self.app.redactor.arguments(request.args, request.kwargs, self)
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{args_shown} kwargs:{kwargs_shown}")
        if countdown is None and eta is None:
            countdown = self.default_retry_delay
        now = self.app.now_ts()
        if eta is not None:
            when = (eta.timestamp() if isinstance(eta, datetime) else float(eta)) - now
        else:
            when = float(countdown or 0)
        base = request.envelope
        envelope = Envelope(
            id=request.id or "", task=self.name,
            args=list(request.args if args is None else args),
            kwargs=dict(request.kwargs if kwargs is None else kwargs),
            queue=options.get("queue") or (base.queue if base else self.app.default_queue),
            priority=options.get("priority", base.priority if base else 0),
            # The next attempt's eta, as Celery sets it: it also tells a signing worker that the
            # message waits in the broker on purpose until then (task_message_signing_max_age).
            eta=now + when if when > 0 else None,
            expires=base.expires if base else None, retries=request.retries + 1,
            root_id=request.root_id, parent_id=request.parent_id, group_id=request.group,
            headers=dict(request.headers or {}), ignore_result=request.ignore_result,
            time_limit=base.time_limit if base else None,
            soft_time_limit=base.soft_time_limit if base else None,
            origin=base.origin if base else None,
            flow=base.flow if base else None,  # what follows the task follows its last attempt
        )
        raise Retry(exc=exc, when=max(when, 0.0), envelope=envelope)

    def backoff_for(self, retries: int) -> float:
        """The countdown ``autoretry_for`` uses: exponential with ``retry_backoff``, capped,
        with full jitter when ``retry_jitter`` (so retrying clients do not stampede)."""
        if not self.retry_backoff:
            return float(self.retry_kwargs.get("countdown", self.default_retry_delay))
        factor = 1.0 if self.retry_backoff is True else float(self.retry_backoff)
        countdown = min(float(self.retry_backoff_max), factor * (2.0 ** retries))
        if self.retry_jitter:
            countdown = random.uniform(0, countdown)
        return countdown

    def update_state(self, task_id: str | None = None, state: str | None = None,
                     meta: Any = None, **kwargs: Any) -> None:
        """Record a custom state (``PROGRESS``) and its meta, readable via ``AsyncResult.info``."""
        task_id = task_id or self.request.id
        if task_id is None:
            return
        request = self.request
        self.app.backend.store(task_id, state or states.PENDING, meta, name=self.name,
                               worker=request.hostname, retries=request.retries)
        if request.hostname and not request.is_eager and self.app.conf.worker_send_task_events:
            from .events import EVENT_LOG, app_cap, event

            try:
                data = event("task-progress", uuid=task_id, name=self.name, hostname=request.hostname,
                             state=state, meta=meta)
                self.app.broker.log_append(EVENT_LOG, data, app_cap(self.app)(data))
            except Exception:  # progress is recorded above; its event is best-effort
                pass

    def send_event(self, type_: str, retry: bool = True, retry_policy: Any = None, **fields: Any) -> None:
        """Append a custom event (say ``task-thumbnail``) to the event stream with this run's id
        and worker, where ``celeriac events`` and the dashboard's feed show it."""
        from .events import EVENT_LOG, app_cap, event

        request = self.request
        data = event(type_, uuid=request.id, hostname=request.hostname, **fields)
        self.app.broker.log_append(EVENT_LOG, data, app_cap(self.app)(data))

    # -- hooks a subclass may override (called by the worker) ----------------------------
    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        pass

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        pass

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pass

    def on_retry(self, exc: BaseException | None, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pass

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pass

    # -- resolved options -----------------------------------------------------------------
    def option(self, name: str, setting: str) -> Any:
        """The task's own ``name`` attribute, else the app-wide ``setting``."""
        value = getattr(self, name)
        return getattr(self.app.conf, setting) if value is None else value  # a plain attribute read

    def __repr__(self) -> str:
        return f"<@task: {self.name}>"


def make_task_class(fun: Callable[..., Any], base: type[Task[Any, Any]], options: dict[str, Any]) -> type:
    unknown = set(options) - Task.OPTIONS
    if unknown:
        from .config import suggest

        name = sorted(unknown)[0]
        from .exceptions import ConfigurationError

        raise ConfigurationError(f"task {fun.__name__!r}: unknown option {name!r}{suggest(name, Task.OPTIONS)}")
    attrs = {k: v for k, v in options.items() if k not in ("base", "shared", "lazy", "pydantic", "filter")}
    for name in ("autoretry_for", "throws"):
        if isinstance(attrs.get(name), list):
            attrs[name] = tuple(attrs[name])
    attrs["run"] = fun if options.get("bind") else staticmethod(fun)
    attrs["__doc__"] = fun.__doc__
    attrs["__module__"] = fun.__module__
    attrs["__wrapped__"] = fun
    return type(fun.__name__, (base,), attrs)
