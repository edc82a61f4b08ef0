"""Server-rendered pages (Jinja2, autoescaped) and the server-sent events that keep them live.

Assets are the package's own (``static/``), served from this origin, so the dashboard works in a
closed network and the Content-Security-Policy can forbid inline script and every other origin.
Everything a task supplied (arguments, results, names) reaches the page only through Jinja2's
escaping, both in the page and in the rows the live table fetches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates

from .. import states
from ..monitor.history import TaskQuery
from .chart import outcome_bars
from .overview import Gatherer
from .retry import NotRetryable, retry_call
from .service import Dashboard
from .shapes import args_repr, timeline
from .v1 import openapi_summary

HERE = Path(__file__).parent
PAGE_SIZE = 50
DEAD_LETTERS_SHOWN = 50  # per queue; "all" actions still reach every one
CHANGE_POLL = 0.5     # seconds between looks at the history's change counter
KEEPALIVE = 15.0      # seconds between comments that keep proxies from closing an idle stream
TIMES = (("Sent", "sent"), ("Received", "received"), ("Started", "started"), ("Retried", "retried"),
         ("Succeeded", "succeeded"), ("Failed", "failed"), ("Revoked", "revoked"), ("Rejected", "rejected"))
STATE_CHOICES = ("PENDING", "RECEIVED", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED")


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _moment(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _call_json(record: Any) -> str | None:
    """The kept arguments as indented JSON for the page (already redacted by the worker)."""
    call = record.call
    if not isinstance(call, dict):
        return None
    shown = {"args": call.get("args"), "kwargs": call.get("kwargs")}
    flat = json.dumps(shown, ensure_ascii=False)
    return flat if len(flat) <= 100 else json.dumps(shown, indent=2, ensure_ascii=False)


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters["when"] = _when
    found.env.filters["moment"] = _moment
    return found


class Pages:
    """The page handlers; :func:`router` registers them."""

    def __init__(self, dash: Dashboard, openapi: Callable[[], dict[str, Any]]) -> None:
        self.dash = dash
        self.openapi = openapi
        self.render = templates()
        self.prefix = dash.settings.url_prefix
        self.gather = Gatherer(dash)

    def page(self, request: Request, name: str, page: str, status_code: int = 200, **values: Any) -> Response:
        session, new = self.dash.csrf.session(request)
        notice = request.query_params.get("notice", "")
        if notice and not self.dash.csrf.signed(notice, request.query_params.get("sig", "")):
            notice = ""  # not written by this dashboard
        response = self.render.TemplateResponse(request, name, {
            "request": request, "prefix": self.prefix, "page": page, "read_only": self.dash.settings.read_only,
            "csrf_token": self.dash.csrf.token(session), "notice": notice, **values}, status_code=status_code)
        if new:
            self.dash.csrf.remember(response, session)
        return response

    @staticmethod
    def task_query(request: Request) -> tuple[TaskQuery, str, int]:
        params = request.query_params
        try:
            offset = max(int(params.get("offset", "0")), 0)
        except ValueError:
            offset = 0
        chosen = {k: params[k] for k in ("state", "name", "search") if params.get(k)}
        query = TaskQuery(state=chosen.get("state"), name=chosen.get("name"), search=chosen.get("search"),
                          limit=PAGE_SIZE + 1, offset=offset)
        return query, urlencode(chosen), offset

    # -- tasks ----------------------------------------------------------------------------------
    async def home(self) -> Response:
        return RedirectResponse(f"{self.prefix}/overview", status_code=307)

    async def overview(self, request: Request) -> Response:
        found = await run_in_threadpool(self.gather)
        return self.page(request, "overview.html", "overview", o=found, chart=outcome_bars(found.buckets))

    async def overview_body(self, request: Request) -> Response:
        found = await run_in_threadpool(self.gather)
        return self.page(request, "overview_body.html", "overview", o=found, chart=outcome_bars(found.buckets))

    async def tasks(self, request: Request) -> Response:
        query, filters, offset = self.task_query(request)
        records = await run_in_threadpool(self.dash.history.query, query)
        names = await run_in_threadpool(self.dash.history.names)
        return self.page(request, "tasks.html", "tasks", tasks=records[:PAGE_SIZE], more=len(records) > PAGE_SIZE,
                         query=query, filters=filters, offset=offset, limit=PAGE_SIZE, names=names,
                         state_choices=sorted(set(STATE_CHOICES) | states.ALL_STATES, key=STATE_CHOICES.index))

    async def task_rows(self, request: Request) -> Response:
        query, _, _ = self.task_query(request)
        query.limit = PAGE_SIZE
        records = await run_in_threadpool(self.dash.history.query, query)
        return self.page(request, "task_rows.html", "tasks", tasks=records)

    async def task(self, request: Request, task_id: str) -> Response:
        record = await run_in_threadpool(self.dash.task, task_id)
        if record is None:
            return self.page(request, "not_found.html", "tasks", status_code=404, task_id=task_id,
                             message=f"No task {task_id} in the history or the result store.")
        times = [(label, getattr(record, name)) for label, name in TIMES if getattr(record, name) is not None]
        try:
            retry_call(record)
            why_not = None
        except NotRetryable as exc:
            why_not = str(exc)
        return self.page(request, "task.html", "tasks", task=record, args=args_repr(record.args), times=times,
                         final=states.READY_STATES, steps=timeline(record), call_json=_call_json(record),
                         no_retry=why_not)

    # -- what the broker holds ------------------------------------------------------------------
    def _workers(self) -> list[dict[str, Any]]:
        return sorted(self.dash.app.control.workers(), key=lambda w: (not w["alive"], w["hostname"]))

    async def workers(self, request: Request) -> Response:
        return self.page(request, "workers.html", "workers", workers=await run_in_threadpool(self._workers))

    async def worker_rows(self, request: Request) -> Response:
        return self.page(request, "worker_rows.html", "workers", workers=await run_in_threadpool(self._workers))

    def _dead_letters(self, queues: list[Any]) -> list[dict[str, Any]]:
        from ..control import describe_body

        out = []
        for q in queues:
            if not q.dead:
                continue
            for letter in self.dash.app.control.dead_letters(q.name, DEAD_LETTERS_SHOWN):
                request = describe_body(letter.body, self.dash.app)
                out.append({"queue": q.name, "id": letter.id, "task_id": request.get("id"),
                            "task": request.get("name"), "reason": letter.reason, "time": letter.time})
        return out

    async def queues(self, request: Request) -> Response:
        stats = await run_in_threadpool(self.dash.queue_stats)
        letters = await run_in_threadpool(self._dead_letters, stats)
        return self.page(request, "queues.html", "queues", queues=stats, letters=letters,
                         dead_queues=[q for q in stats if q.dead])

    def _schedules(self) -> list[dict[str, Any]]:
        from ..beat import Schedule

        schedule = Schedule(self.dash.app)
        out = []
        for name, entry in sorted(schedule.entries().items()):
            last = schedule.last_run(name)
            upcoming = schedule.next_runs(name, 1) if not entry.paused else []
            last_task = self.dash.history.get(last.task_id) if last is not None and last.task_id else None
            out.append({"name": name, "task": entry.task, "schedule": str(entry.schedule), "paused": entry.paused,
                        "source": entry.source, "next_run": upcoming[0] if upcoming else None,
                        "last_run": last.sent if last is not None else None,
                        "last_task_id": last.task_id if last is not None else None,
                        "last_state": last_task.state if last_task is not None else None})
        return out

    async def schedules(self, request: Request) -> Response:
        return self.page(request, "schedules.html", "schedules", entries=await run_in_threadpool(self._schedules))

    async def schedule_rows(self, request: Request) -> Response:
        return self.page(request, "schedule_rows.html", "schedules", entries=await run_in_threadpool(self._schedules))

    async def queue_rows(self, request: Request) -> Response:
        return self.page(request, "queue_rows.html", "queues",
                         queues=await run_in_threadpool(self.dash.queue_stats))

    # -- the rest -------------------------------------------------------------------------------
    async def docs(self, request: Request) -> Response:
        return self.page(request, "docs.html", "docs", operations=openapi_summary(self.openapi()))

    async def changes(self, request: Request) -> StreamingResponse:
        indexer = self.dash.indexer

        async def stream() -> AsyncIterator[bytes]:
            seen = indexer.changes
            quiet = 0.0
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(CHANGE_POLL)
                if indexer.changes != seen:
                    seen = indexer.changes
                    quiet = 0.0
                    yield f"event: change\ndata: {seen}\n\n".encode()
                else:
                    quiet += CHANGE_POLL
                    if quiet >= KEEPALIVE:
                        quiet = 0.0
                        yield b": keepalive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


ROUTES = (("/", "home"), ("/overview", "overview"), ("/overview/body", "overview_body"),
          ("/schedules", "schedules"), ("/schedules/rows", "schedule_rows"), ("/tasks", "tasks"),
          ("/tasks/rows", "task_rows"), ("/tasks/{task_id}", "task"),
          ("/workers", "workers"), ("/workers/rows", "worker_rows"), ("/queues", "queues"),
          ("/queues/rows", "queue_rows"), ("/docs", "docs"), ("/events/changes", "changes"))


def router(dash: Dashboard, openapi: Callable[[], dict[str, Any]]) -> APIRouter:
    handlers = Pages(dash, openapi)
    pages = APIRouter(include_in_schema=False)
    for path, name in ROUTES:
        pages.add_api_route(path, getattr(handlers, name), methods=["GET"])
    return pages
