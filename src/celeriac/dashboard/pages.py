"""Server-rendered pages (Jinja2, autoescaped) and the server-sent events that keep them live.

Assets are the package's own (``static/``), served from this origin, so the dashboard works in a
closed network and the Content-Security-Policy can forbid inline script and every other origin.
Everything a task supplied (arguments, results, names) reaches the page only through Jinja2's
escaping, both in the page and in the rows the live table fetches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
from .service import Dashboard
from .shapes import args_repr, timeline
from .v1 import openapi_summary

HERE = Path(__file__).parent
PAGE_SIZE = 50
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


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters["when"] = _when
    found.env.filters["moment"] = _moment
    return found


def router(dash: Dashboard, openapi: Any) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    render = templates()
    prefix = dash.settings.url_prefix

    def context(request: Request, page: str, **values: Any) -> dict[str, Any]:
        return {"request": request, "prefix": prefix, "page": page, "read_only": dash.settings.read_only, **values}

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

    @pages.get("/")
    async def home() -> Response:
        return RedirectResponse(f"{prefix}/tasks", status_code=307)

    @pages.get("/tasks")
    async def tasks(request: Request) -> Response:
        query, filters, offset = task_query(request)
        records = await run_in_threadpool(dash.history.query, query)
        names = await run_in_threadpool(dash.history.names)
        return render.TemplateResponse(request, "tasks.html", context(
            request, "tasks", tasks=records[:PAGE_SIZE], more=len(records) > PAGE_SIZE, query=query, filters=filters,
            offset=offset, limit=PAGE_SIZE, names=names,
            state_choices=sorted(set(STATE_CHOICES) | states.ALL_STATES, key=STATE_CHOICES.index)))

    @pages.get("/tasks/rows")
    async def rows(request: Request) -> Response:
        query, _, _ = task_query(request)
        query.limit = PAGE_SIZE
        records = await run_in_threadpool(dash.history.query, query)
        return render.TemplateResponse(request, "task_rows.html", context(request, "tasks", tasks=records))

    @pages.get("/tasks/{task_id}")
    async def task(request: Request, task_id: str) -> Response:
        record = await run_in_threadpool(dash.task, task_id)
        if record is None:
            return render.TemplateResponse(request, "not_found.html", context(
                request, "tasks", message=f"No task {task_id} in the history or the result store."),
                status_code=404)
        times = [(label, getattr(record, name)) for label, name in TIMES if getattr(record, name) is not None]
        return render.TemplateResponse(request, "task.html", context(
            request, "tasks", task=record, args=args_repr(record.args), times=times, final=states.READY_STATES,
            steps=timeline(record)))

    @pages.get("/docs")
    async def docs(request: Request) -> Response:
        return render.TemplateResponse(request, "docs.html", context(
            request, "docs", operations=openapi_summary(openapi())))

    @pages.get("/events/changes")
    async def changes(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            seen = dash.indexer.changes
            quiet = 0.0
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(CHANGE_POLL)
                if dash.indexer.changes != seen:
                    seen = dash.indexer.changes
                    quiet = 0.0
                    yield f"event: change\ndata: {seen}\n\n".encode()
                else:
                    quiet += CHANGE_POLL
                    if quiet >= KEEPALIVE:
                        quiet = 0.0
                        yield b": keepalive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return pages
