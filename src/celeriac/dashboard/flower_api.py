"""Flower's HTTP API, route for route and shape for shape (see ``docs/dashboard.md``), so
scripts written against Flower run unchanged. Blocking work (the broker, the result store, the
history) runs in the thread pool; handlers only parse and shape."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .. import states
from ..exceptions import ConfigurationError, EncodeError, ResultTimeout
from ..monitor.history import TaskQuery
from ..result import AsyncResult
from .params import Args, BadArgument, no_all
from .service import Dashboard
from .shapes import task_dict

DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
FLOWER_SORTS = {"name": "name", "state": "state", "received": "received", "started": "started"}
PAGE = 1000  # tasks per history read when /api/tasks streams everything it holds

Handler = Callable[[Request], Awaitable[Response]]


def text(status: int, body: str) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


def _safe_result(value: Any) -> Any:
    """The value itself when JSON can carry it, else its repr (as Flower answers)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


class FlowerAPI:
    """The handlers; :func:`router` registers them."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.app = dash.app

    # -- tasks ----------------------------------------------------------------------------------
    async def list_tasks(self, request: Request) -> Response:
        args = await Args.of(request)
        limit = args.integer("limit")
        sort_by = args.text("sort_by") or ""
        column = FLOWER_SORTS.get(sort_by.lstrip("-")) if sort_by else "seen"
        if column is None:
            raise BadArgument(f"Invalid argument sort_by: {sort_by!r}; use name, state, received or started "
                              "(prefix - for descending)")
        query = TaskQuery(state=no_all(args.text("state")), name=no_all(args.text("taskname")),
                          worker=no_all(args.text("workername")), queue=no_all(args.text("queue")),
                          received_from=args.minute("received_start"), received_to=args.minute("received_end"),
                          search=args.text("search") or None, sort=column,
                          descending=not sort_by or sort_by.startswith("-"),
                          limit=None if limit is None else max(limit, 0),
                          offset=max(args.integer("offset", 0) or 0, 0))
        if query.limit is not None and query.limit <= PAGE:
            records = await run_in_threadpool(self.dash.history.query, query)
            return JSONResponse({r.uuid: task_dict(r) for r in records})
        return StreamingResponse(_stream_tasks(self.dash, query), media_type="application/json")

    async def task_info(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        record = await run_in_threadpool(self.dash.task, task_id)
        if record is None:
            return text(404, f"Unknown task '{task_id}'")
        return JSONResponse(task_dict(record))

    async def task_result(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        timeout = (await Args.of(request)).number("timeout")

        def read() -> dict[str, Any]:
            result: AsyncResult[Any] = AsyncResult(task_id, app=self.app)
            if timeout:
                try:
                    result.get(timeout=timeout, propagate=False)
                except ResultTimeout:
                    pass
            reply: dict[str, Any] = {"task-id": task_id, "state": result.state}
            if result.ready():
                _add_result(reply, result)
            return reply

        return JSONResponse(await run_in_threadpool(read))

    async def task_types(self, request: Request) -> Response:
        names = await run_in_threadpool(self.dash.history.names)
        return JSONResponse({"task-types": names})

    async def queue_lengths(self, request: Request) -> Response:
        stats = await run_in_threadpool(self.dash.queue_stats)
        return JSONResponse({"active_queues": [
            {"name": s.name, "messages": s.ready_total, "delayed": s.delayed, "unacked": s.unacked,
             "dead": s.dead} for s in stats]})

    async def _send(self, request: Request, name: str, *, registered: bool, wait: bool) -> Response:
        if registered and name not in self.app.tasks:
            return text(404, f"Unknown task '{name}'")
        call_args, kwargs, options = await _task_args(request)
        timeout = (await Args.of(request)).number("timeout")

        def send() -> dict[str, Any]:
            result = self.app.send_task(name, args=call_args, kwargs=kwargs, **options)
            reply: dict[str, Any] = {"task-id": result.id}
            if wait:
                try:
                    result.get(timeout=timeout, propagate=False)
                except ResultTimeout:
                    pass
                _add_result(reply, result)
            reply["state"] = result.state
            return reply

        try:
            return JSONResponse(await run_in_threadpool(send))
        except (ConfigurationError, EncodeError) as exc:
            return text(400, str(exc))

    async def async_apply(self, request: Request) -> Response:
        return await self._send(request, request.path_params["name"], registered=True, wait=False)

    async def apply(self, request: Request) -> Response:
        return await self._send(request, request.path_params["name"], registered=True, wait=True)

    async def send_task(self, request: Request) -> Response:
        return await self._send(request, request.path_params["name"], registered=False, wait=False)

    async def revoke(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        args = await Args.of(request)
        terminate, signal = args.boolean("terminate"), args.text("signal", "SIGTERM") or "SIGTERM"
        if not _known_signal(signal):
            raise BadArgument(f"Invalid argument signal: unknown signal {signal!r}")
        await run_in_threadpool(lambda: self.app.control.revoke(task_id, terminate=terminate, signal=signal))
        return JSONResponse({"message": f"Revoked '{task_id}'"})

    # -- worker control -------------------------------------------------------------------------
    async def _control(self, request: Request, command: str, arguments: dict[str, Any], ok: Callable[[str], str],
                       failed: str, worker: str | None = None) -> Response:
        worker = worker or request.path_params["worker"]
        if not await run_in_threadpool(_known_worker, self.dash, worker):
            return text(404, f"Unknown worker '{worker}'")
        replies = await run_in_threadpool(lambda: self.app.control.broadcast(
            command, arguments, destination=[worker], reply=True, timeout=self.dash.settings.inspect_timeout))
        reply = next((r[worker] for r in replies or [] if worker in r), None)
        if isinstance(reply, dict) and "ok" in reply:
            return JSONResponse({"message": ok(str(reply["ok"]))})
        reason = reply.get("error", "Unknown reason") if isinstance(reply, dict) else "no reply"
        return text(403, f"{failed}: {reason}")

    async def shutdown(self, request: Request) -> Response:
        worker = request.path_params["worker"]
        if not await run_in_threadpool(_known_worker, self.dash, worker):
            return text(404, f"Unknown worker '{worker}'")
        await run_in_threadpool(lambda: self.app.control.shutdown(destination=[worker]))
        return JSONResponse({"message": "Shutting down!"})

    async def pool_grow(self, request: Request) -> Response:
        worker, n = request.path_params["worker"], (await Args.of(request)).integer("n", 1) or 1
        return await self._control(request, "pool_grow", {"n": n},
                                   lambda _: f"Growing '{worker}' worker's pool by {n}",
                                   f"Failed to grow '{worker}' worker's pool")

    async def pool_shrink(self, request: Request) -> Response:
        worker, n = request.path_params["worker"], (await Args.of(request)).integer("n", 1) or 1
        return await self._control(request, "pool_shrink", {"n": n},
                                   lambda _: f"Shrinking '{worker}' worker's pool by {n}",
                                   f"Failed to shrink '{worker}' worker's pool")

    async def pool_autoscale(self, request: Request) -> Response:
        worker, args = request.path_params["worker"], await Args.of(request)
        low, high = args.integer("min"), args.integer("max")
        if low is None or high is None:
            raise BadArgument("Missing argument min or max")
        return await self._control(request, "autoscale", {"min": low, "max": high},
                                   lambda _: f"Autoscaling '{worker}' worker (min={low}, max={high})",
                                   f"Failed to autoscale '{worker}' worker")

    async def pool_restart(self, request: Request) -> Response:
        worker = request.path_params["worker"]
        return await self._control(request, "pool_restart", {"reload": False},
                                   lambda _: f"Restarting '{worker}' worker's pool",
                                   f"Failed to restart the '{worker}' pool")

    async def add_consumer(self, request: Request) -> Response:
        worker, queue = request.path_params["worker"], (await Args.of(request)).text("queue", required=True)
        return await self._control(request, "add_consumer", {"queue": queue}, lambda ok: ok,
                                   f"Failed to add '{queue}' consumer to '{worker}' worker")

    async def cancel_consumer(self, request: Request) -> Response:
        worker, queue = request.path_params["worker"], (await Args.of(request)).text("queue", required=True)
        return await self._control(request, "cancel_consumer", {"queue": queue}, lambda ok: ok,
                                   f"Failed to cancel '{queue}' consumer from '{worker}' worker")

    async def rate_limit(self, request: Request) -> Response:
        name, args = request.path_params["name"], await Args.of(request)
        worker = args.text("workername", required=True)
        limit = args.text("ratelimit", required=True)
        if name not in self.app.tasks:
            return text(404, f"Unknown task '{name}'")
        return await self._control(request, "rate_limit", {"task_name": name, "rate_limit": limit}, lambda ok: ok,
                                   "Failed to set rate limit", worker=worker)

    async def time_limit(self, request: Request) -> Response:
        name, args = request.path_params["name"], await Args.of(request)
        worker = args.text("workername", required=True)
        soft, hard = args.number("soft"), args.number("hard")
        if name not in self.app.tasks:
            return text(404, f"Unknown task '{name}'")
        return await self._control(request, "time_limit", {"task_name": name, "soft": soft, "hard": hard},
                                   lambda ok: ok, "Failed to set timeouts", worker=worker)

    # -- workers --------------------------------------------------------------------------------
    async def list_workers(self, request: Request) -> Response:
        args = await Args.of(request)
        refresh, status, workername = args.boolean("refresh"), args.boolean("status"), args.text("workername")
        if status:
            alive = await run_in_threadpool(self.dash.workers_alive)
            if workername:
                if workername not in alive:
                    return text(404, f"Unknown worker '{workername}'")
                return JSONResponse({workername: alive[workername]})
            return JSONResponse(alive)
        workers = await run_in_threadpool(self.dash.workers, refresh, workername)
        if workername:
            if workername not in workers:
                return text(404, f"Unknown worker '{workername}'")
            return JSONResponse({workername: workers[workername]})
        return JSONResponse(workers)

    # -- always open ----------------------------------------------------------------------------
    async def healthcheck(self) -> Response:
        return PlainTextResponse("OK")

    async def metrics(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = await run_in_threadpool(generate_latest, self.dash.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


#: (method, path, FlowerAPI handler); OPEN routes answer with or without auth and read-only.
ROUTES = [
    ("GET", "/api/tasks", "list_tasks"),
    ("GET", "/api/task/info/{task_id}", "task_info"),
    ("GET", "/api/task/result/{task_id}", "task_result"),
    ("GET", "/api/task/types", "task_types"),
    ("GET", "/api/queues/length", "queue_lengths"),
    ("POST", "/api/task/async-apply/{name:path}", "async_apply"),
    ("POST", "/api/task/apply/{name:path}", "apply"),
    ("POST", "/api/task/send-task/{name:path}", "send_task"),
    ("POST", "/api/task/revoke/{task_id}", "revoke"),
    ("POST", "/api/worker/shutdown/{worker}", "shutdown"),
    ("POST", "/api/worker/pool/grow/{worker}", "pool_grow"),
    ("POST", "/api/worker/pool/shrink/{worker}", "pool_shrink"),
    ("POST", "/api/worker/pool/autoscale/{worker}", "pool_autoscale"),
    ("POST", "/api/worker/pool/restart/{worker}", "pool_restart"),
    ("POST", "/api/worker/queue/add-consumer/{worker}", "add_consumer"),
    ("POST", "/api/worker/queue/cancel-consumer/{worker}", "cancel_consumer"),
    ("POST", "/api/task/rate-limit/{name:path}", "rate_limit"),
    ("POST", "/api/task/timeout/{name:path}", "time_limit"),
    ("GET", "/api/workers", "list_workers"),
    ("OPEN", "/healthcheck", "healthcheck"),
    ("OPEN", "/metrics", "metrics"),
]


def router(dash: Dashboard) -> APIRouter:
    handlers = FlowerAPI(dash)
    api = APIRouter()
    for method, path, name in ROUTES:
        handler = getattr(handlers, name)
        if method == "OPEN":
            api.add_api_route(path, handler, methods=["GET"], include_in_schema=False)
        else:
            api.add_api_route(path, _guarded(dash, method, handler), methods=[method], include_in_schema=False)
    return api


def _guarded(dash: Dashboard, method: str, fn: Handler) -> Handler:
    """``--read_only`` refuses every POST; BadArgument becomes 400 with its message."""

    async def handle(request: Request) -> Response:
        if method == "POST" and dash.settings.read_only:
            return text(403, "This dashboard is read-only (--read_only)")
        try:
            return await fn(request)
        except BadArgument as exc:
            return text(400, str(exc))

    handle.__name__ = fn.__name__
    return handle


def _known_signal(name: str) -> bool:
    import signal

    text = name.upper()
    return name.isdigit() or (text if text.startswith("SIG") else f"SIG{text}") in signal.Signals.__members__


def _known_worker(dash: Dashboard, worker: str) -> bool:
    return worker in dash.worker_cache or any(w.name == worker for w in dash.app.broker.workers())


def _add_result(reply: dict[str, Any], result: AsyncResult[Any]) -> None:
    if not result.ready():
        return
    reply["result"] = _safe_result(result.result)
    if result.state == states.FAILURE:
        reply["traceback"] = result.traceback


async def _task_args(request: Request) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Flower's request body: ``{"args": [], "kwargs": {}, ...apply_async options}``."""
    body = await request.body()
    try:
        options = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise BadArgument(f"Invalid JSON body: {exc}") from None
    if not isinstance(options, dict):
        raise BadArgument("invalid options")
    call_args, kwargs = options.pop("args", []), options.pop("kwargs", {})
    if not isinstance(call_args, list):
        raise BadArgument("args must be an array")
    if not isinstance(kwargs, dict):
        raise BadArgument("kwargs must be an object")
    try:
        if "eta" in options:
            options["eta"] = datetime.strptime(str(options["eta"]), DATE_FORMAT)
        if "countdown" in options:
            options["countdown"] = float(options["countdown"])
        if "expires" in options:
            try:
                options["expires"] = float(options["expires"])
            except ValueError:
                options["expires"] = datetime.strptime(str(options["expires"]), DATE_FORMAT)
    except (TypeError, ValueError):
        raise BadArgument("Invalid option") from None
    return call_args, kwargs, options


def _stream_tasks(dash: Dashboard, query: TaskQuery) -> Iterator[bytes]:
    """Everything asked for, one history page at a time, so answering ``/api/tasks`` without a
    limit costs a page of memory, not the whole history."""
    encode = msgspec.json.encode
    wanted, offset, first = query.limit, query.offset, True
    yield b"{"
    while wanted is None or wanted > 0:
        page = min(PAGE, wanted) if wanted is not None else PAGE
        query.limit, query.offset = page, offset
        records = dash.history.query(query)
        # One chunk per page: a streamed chunk costs a hop to the thread pool and back.
        parts = [encode(r.uuid) + b": " + encode(task_dict(r)) for r in records]
        if parts:
            yield (b"" if first else b", ") + b", ".join(parts)
            first = False
        if len(records) < page:
            break
        offset += page
        wanted = None if wanted is None else wanted - page
    yield b"}"


