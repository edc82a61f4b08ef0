"""The typed v1 API (``/api/v1``): what a web app needs to submit work and show its progress,
with an OpenAPI description (``/openapi.json``, rendered at ``/docs``).

Unlike Flower's routes, results and progress come as JSON values (read from the result store),
times as ISO-8601, lists as lists, and errors as ``{"detail": ...}`` with 400/404/409.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from .. import message, states
from ..exceptions import ConfigurationError, EncodeError
from ..monitor.history import TaskQuery
from ..monitor.state import TaskRecord
from .service import Dashboard
from .shapes import args_repr, timeline

SSE_POLL = 0.25  # seconds between looks at a task whose progress is being streamed
Sort = Literal["seen", "name", "state", "received", "started", "timestamp"]


def _iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


# JSON Schema's integer: 5 and 5.0, never true or false; the bounds inside, so the schema shows them.
Priority = Annotated[int, Field(ge=0, le=9), BeforeValidator(_not_bool)]

# The signals that stop or nudge a running task; named in the schema, so nothing else is sent.
SignalName = Literal["SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"]


class Request(BaseModel):
    # Strict and closed: a request the schema does not describe is refused (422), never guessed at.
    model_config = ConfigDict(strict=True, extra="forbid")


class Problem(BaseModel):
    detail: str


Responses = dict[int | str, dict[str, Any]]
READ_ONLY: Responses = {403: {"model": Problem, "description": "The dashboard is read-only"}}
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such task"}}
BAD: Responses = {400: {"model": Problem, "description": "The request cannot be carried out as given"}}


class SubmitTask(Request):
    name: str = Field(min_length=1, description="The registered task's name")
    args: list[Any] = Field(default_factory=list, description="Positional arguments (JSON values)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments (JSON values)")
    countdown: float | None = Field(default=None, ge=0, description="Seconds to wait before running")
    eta: datetime | None = Field(default=None, strict=False, description="Run at this time (ISO-8601; naive means UTC)")
    expires: float | None = Field(default=None, gt=0, description="Seconds after which it is not run")
    priority: Priority | None = Field(default=None, strict=False, description="0-9, higher first")
    queue: str | None = None


class Submitted(BaseModel):
    id: str
    state: str
    url: str = Field(description="Where its status is (GET)")


class Step(BaseModel):
    at: datetime | None
    event: str = Field(description="task-received, task-started, task-progress, task-retried, ...")
    detail: str | None = Field(default=None, description="Where it ran, why it was retried, progress...")


class TaskStatus(BaseModel):
    id: str
    name: str | None
    state: str
    progress: Any = Field(default=None, description="The meta of a custom state such as PROGRESS")
    result: Any = Field(default=None, description="The return value once SUCCESS (JSON)")
    exception: str | None = None
    traceback: str | None = None
    worker: str | None = None
    queue: str | None = None
    retries: int = 0
    args: str | None = Field(default=None, description="As shown by the worker (repr, secrets redacted)")
    kwargs: str | None = None
    received: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    runtime: float | None = None
    timeline: list[Step] = Field(default_factory=list, description="What happened to it, oldest first")


class TaskPage(BaseModel):
    items: list[TaskStatus]
    next_offset: int | None = Field(description="Offset of the next page; null on the last")


class Worker(BaseModel):
    hostname: str
    alive: bool
    last_seen: datetime
    pool: str | None = None
    concurrency: int | None = None
    queues: list[str] = Field(default_factory=list)
    processed: int | None = None
    failed: int | None = None
    active: int | None = None


class Queue(BaseModel):
    name: str
    ready: int
    ready_by_priority: dict[str, int]
    delayed: int
    unacked: int
    dead: int


class DeadLetter(BaseModel):
    queue: str
    id: str
    task_id: str | None
    task: str | None
    reason: str
    time: datetime


class ScheduleEntry(BaseModel):
    name: str
    task: str
    schedule: str
    paused: bool
    source: str
    next_run: datetime | None
    last_run: datetime | None
    last_task_id: str | None


class Revoke(Request):
    terminate: bool = False
    signal: SignalName = "SIGTERM"


class Message(BaseModel):
    message: str


def _status(record: TaskRecord, meta: dict[str, Any] | None) -> TaskStatus:
    finished = record.succeeded or record.failed or record.revoked or record.rejected
    status = TaskStatus(
        id=record.uuid, name=record.name, state=record.state, progress=record.progress,
        exception=record.exception, traceback=record.traceback, worker=record.worker, queue=record.queue,
        retries=record.retries, args=args_repr(record.args), kwargs=record.kwargs, received=_iso(record.received),
        started=_iso(record.started), finished=_iso(finished), runtime=record.runtime,
        timeline=[Step(at=_iso(at), event=kind, detail=detail) for at, kind, detail in timeline(record)])
    if meta is not None:
        stored = str(meta.get("status"))
        if stored == states.SUCCESS:
            status.result = meta.get("result")
        elif stored not in states.ALL_STATES:
            status.progress = meta.get("result")  # the newest meta, even between progress events
        if stored in states.READY_STATES and status.state not in states.READY_STATES:
            status.state = stored  # the result store is written before the event: trust it
    return status


def router(dash: Dashboard) -> APIRouter:  # noqa: C901 - one small closure per route
    api = APIRouter(prefix="/api/v1", tags=["v1"],
                    responses={503: {"model": Problem, "description": "The broker cannot be reached"}})
    app = dash.app

    def read_status(task_id: str) -> TaskStatus | None:
        record = dash.task(task_id)
        if record is None:
            return None
        data = app.backend.read(task_id)
        return _status(record, None if data is None else message.loads(data))

    def refuse_if_read_only() -> None:
        if dash.settings.read_only:
            raise HTTPException(403, "This dashboard is read-only (--read_only)")

    @api.post("/tasks", response_model=Submitted, status_code=202, summary="Submit a task by name",
              responses={**BAD, **READ_ONLY, 404: {"model": Problem, "description": "No such task name"}})
    async def submit(body: SubmitTask) -> Submitted:
        refuse_if_read_only()
        name = body.name
        if name not in app.tasks:
            raise HTTPException(404, f"Unknown task '{name}'")
        options = body.model_dump(exclude={"name", "args", "kwargs"}, exclude_none=True)
        try:
            result = await run_in_threadpool(lambda: app.send_task(name, args=body.args, kwargs=body.kwargs,
                                                                   **options))
        except (ConfigurationError, EncodeError) as exc:
            raise HTTPException(400, str(exc)) from None
        return Submitted(id=result.id, state=states.PENDING,
                         url=f"{dash.settings.url_prefix}/api/v1/tasks/{result.id}")

    @api.get("/tasks/{task_id}", response_model=TaskStatus, summary="A task's status, progress and result",
             responses=NOT_FOUND)
    async def status(task_id: str) -> TaskStatus:
        found = await run_in_threadpool(read_status, task_id)
        if found is None:
            raise HTTPException(404, f"Unknown task '{task_id}'")
        return found

    @api.get("/tasks/{task_id}/stream", summary="A task's status as server-sent events until it ends",
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "`data:` lines of TaskStatus"}})
    async def stream(task_id: str, timeout: Annotated[float, Query(gt=0, le=3600)] = 300) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            last = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                found = await run_in_threadpool(read_status, task_id)
                shown = None if found is None else found.model_dump_json()
                if shown is not None and shown != last:
                    last = shown
                    yield f"data: {shown}\n\n".encode()
                    if found is not None and found.state in states.READY_STATES:
                        return
                await asyncio.sleep(SSE_POLL)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @api.post("/tasks/{task_id}/revoke", response_model=Message, summary="Revoke (and optionally terminate) a task",
              responses={**BAD, **READ_ONLY})
    async def revoke(task_id: str, body: Revoke | None = None) -> Message:
        refuse_if_read_only()
        choice = body or Revoke()
        await run_in_threadpool(lambda: app.control.revoke(task_id, terminate=choice.terminate,
                                                           signal=choice.signal))
        return Message(message=f"Revoked '{task_id}'")

    @api.get("/tasks", response_model=TaskPage, summary="Tasks in the history, newest first")
    async def tasks(state: str | None = None, name: str | None = None, queue: str | None = None,
                    worker: str | None = None, search: str | None = None,
                    sort: Annotated[Sort, Query(description="seen: the order tasks were first seen")] = "seen",
                    descending: bool = True, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                    offset: Annotated[int, Query(ge=0, le=2**62)] = 0) -> TaskPage:
        query = TaskQuery(state=state, name=name, queue=queue, worker=worker, search=search, sort=sort,
                          descending=descending, limit=limit + 1, offset=offset)
        records = await run_in_threadpool(dash.history.query, query)
        more = len(records) > limit
        return TaskPage(items=[_status(r, None) for r in records[:limit]], next_offset=offset + limit if more else None)

    @api.get("/workers", response_model=list[Worker], summary="Workers seen recently, alive or not")
    async def workers() -> list[Worker]:
        found = await run_in_threadpool(app.control.workers)
        return [Worker(hostname=w["hostname"], alive=w["alive"], last_seen=_iso(w["last_seen"]) or datetime.now(UTC),
                       pool=w.get("pool"), concurrency=w.get("concurrency"), queues=w.get("queues", []),
                       processed=w.get("processed"), failed=w.get("failed"), active=w.get("active")) for w in found]

    @api.get("/queues", response_model=list[Queue], summary="Depth of every known queue")
    async def queues() -> list[Queue]:
        stats = await run_in_threadpool(dash.queue_stats)
        return [Queue(name=s.name, ready=s.ready_total,
                      ready_by_priority={str(p): n for p, n in enumerate(s.ready) if n},
                      delayed=s.delayed, unacked=s.unacked, dead=s.dead) for s in stats]

    @api.get("/dead-letters", response_model=list[DeadLetter], summary="Dead letters with their reasons")
    async def dead_letters(queue: str | None = None,
                           limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[DeadLetter]:
        from ..control import describe_body

        def read() -> list[DeadLetter]:
            out = []
            for name in [queue] if queue else dash.queue_names():
                for letter in app.control.dead_letters(name, limit):
                    request = describe_body(letter.body, app)
                    out.append(DeadLetter(queue=name, id=letter.id, task_id=request.get("id"),
                                          task=request.get("name"), reason=letter.reason,
                                          time=_iso(letter.time) or datetime.now(UTC)))
            return out

        return await run_in_threadpool(read)

    @api.get("/schedules", response_model=list[ScheduleEntry], summary="Periodic entries with next and last run")
    async def schedules() -> list[ScheduleEntry]:
        from ..beat import Schedule

        def read() -> list[ScheduleEntry]:
            schedule = Schedule(app)
            out = []
            for name, entry in sorted(schedule.entries().items()):
                last = schedule.last_run(name)
                upcoming = schedule.next_runs(name, 1) if not entry.paused else []
                out.append(ScheduleEntry(name=name, task=entry.task, schedule=str(entry.schedule), paused=entry.paused,
                                         source=entry.source, next_run=upcoming[0] if upcoming else None,
                                         last_run=_iso(last.sent) if last else None,
                                         last_task_id=getattr(last, "task_id", None) if last else None))
            return out

        return await run_in_threadpool(read)

    return api


def openapi_summary(spec: dict[str, Any]) -> list[dict[str, str]]:
    """``[{method, path, summary}]`` of an OpenAPI document, for the /docs page."""
    return [{"method": method.upper(), "path": path, "summary": str(operation.get("summary", ""))}
            for path, item in spec.get("paths", {}).items() for method, operation in item.items()]
