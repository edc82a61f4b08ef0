"""What the pages' buttons do: each a form POST carrying the session's CSRF token (:mod:`.csrf`).

Every action answers 303 back to the page it belongs to with a one-line notice, so it works
with or without the script, and a reload never repeats it. A refusal is a page of its own with
a 4xx status: 403 for ``--read_only`` or a missing or wrong token, 404 for an unknown task,
worker, queue or entry, 409 for what cannot be done to this task (a retry of redacted arguments).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ..exceptions import ConfigurationError
from .csrf import FIELD
from .params import Args
from .retry import NotRetryable, resend
from .service import Dashboard

SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Request, Args], Awaitable[tuple[str, str]]]


class Actions:
    def __init__(self, dash: Dashboard) -> None:
        from .pages import templates

        self.dash = dash
        self.app = dash.app
        self.prefix = dash.settings.url_prefix
        self.render = templates()

    def refused(self, request: Request, status: int, message: str) -> Response:
        return self.render.TemplateResponse(request, "refused.html", {
            "request": request, "prefix": self.prefix, "page": "", "read_only": self.dash.settings.read_only,
            "message": message, "csrf_token": ""}, status_code=status)

    def wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def action(request: Request) -> Response:
            if self.dash.settings.read_only:
                return self.refused(request, 403, "This dashboard is read-only (--read_only).")
            args = await Args.of(request)
            if not self.dash.csrf.valid(request, args.values.get(FIELD)):
                return self.refused(request, 403, "The CSRF token is missing or does not match this browser's "
                                                  "session. Reload the page and try again.")
            try:
                where, notice = await handler(request, args)
            except Refused as exc:
                return self.refused(request, exc.status, exc.message)
            query = urlencode({"notice": notice, "sig": self.dash.csrf.sign(notice)})
            return RedirectResponse(f"{self.prefix}{where}?{query}", status_code=303)

        return action

    # -- tasks ----------------------------------------------------------------------------------
    async def _record(self, task_id: str) -> Any:
        record = await run_in_threadpool(self.dash.task, task_id)
        if record is None:
            raise Refused(404, f"No task {task_id} in the history or the result store.")
        return record

    async def retry(self, request: Request, args: Args) -> tuple[str, str]:
        record = await self._record(request.path_params["task_id"])
        try:
            new_id = await run_in_threadpool(resend, self.dash, record)
        except NotRetryable as exc:
            raise Refused(409, str(exc)) from None
        return f"/tasks/{quote(new_id)}", f"Sent again as {new_id} (a retry of {record.uuid})."

    async def revoke(self, request: Request, args: Args) -> tuple[str, str]:
        task_id = request.path_params["task_id"]
        await run_in_threadpool(lambda: self.app.control.revoke(task_id))
        return f"/tasks/{quote(task_id)}", f"Revoked {task_id}: a worker discards it if it has not started."

    async def terminate(self, request: Request, args: Args) -> tuple[str, str]:
        task_id = request.path_params["task_id"]
        signal = args.text("signal", "SIGTERM") or "SIGTERM"
        if signal not in SIGNALS:
            raise Refused(400, f"Unknown signal {signal!r}; choose from {', '.join(SIGNALS)}.")
        await run_in_threadpool(lambda: self.app.control.revoke(task_id, terminate=True, signal=signal))
        return f"/tasks/{quote(task_id)}", f"Revoked {task_id} and sent {signal} to the process running it."

    # -- workers --------------------------------------------------------------------------------
    async def _worker(self, request: Request) -> str:
        worker = str(request.path_params["worker"])
        known = await run_in_threadpool(lambda: {w["hostname"] for w in self.app.control.workers()})
        if worker not in known:
            raise Refused(404, f"No worker named {worker} has been seen recently.")
        return worker

    async def _control(self, worker: str, command: str, arguments: dict[str, Any], done: str) -> tuple[str, str]:
        replies = await run_in_threadpool(lambda: self.app.control.broadcast(
            command, arguments, destination=[worker], reply=True, timeout=self.dash.settings.inspect_timeout))
        reply = next((r[worker] for r in replies or [] if worker in r), None)
        if isinstance(reply, dict) and "ok" in reply:
            return "/workers", f"{worker}: {done}"
        reason = reply.get("error", "unknown reason") if isinstance(reply, dict) else "it did not reply in time"
        raise Refused(409, f"{worker} did not {command.replace('_', ' ')}: {reason}.")

    async def shutdown(self, request: Request, args: Args) -> tuple[str, str]:
        worker = await self._worker(request)
        await run_in_threadpool(lambda: self.app.control.shutdown(destination=[worker]))
        return "/workers", f"Asked {worker} to shut down (warm: running tasks finish first)."

    async def pool_grow(self, request: Request, args: Args) -> tuple[str, str]:
        worker, n = await self._worker(request), self._count(args)
        return await self._control(worker, "pool_grow", {"n": n}, f"pool grown by {n}.")

    async def pool_shrink(self, request: Request, args: Args) -> tuple[str, str]:
        worker, n = await self._worker(request), self._count(args)
        return await self._control(worker, "pool_shrink", {"n": n}, f"pool shrunk by {n}.")

    async def add_consumer(self, request: Request, args: Args) -> tuple[str, str]:
        worker, queue = await self._worker(request), self._queue(args)
        return await self._control(worker, "add_consumer", {"queue": queue}, f"now consuming from {queue}.")

    async def cancel_consumer(self, request: Request, args: Args) -> tuple[str, str]:
        worker, queue = await self._worker(request), self._queue(args)
        return await self._control(worker, "cancel_consumer", {"queue": queue}, f"stopped consuming from {queue}.")

    @staticmethod
    def _count(args: Args) -> int:
        text = args.text("n", "1") or "1"
        if not text.isdigit() or not 1 <= int(text) <= 64:
            raise Refused(400, f"The number of processes must be a whole number from 1 to 64, not {text!r}.")
        return int(text)

    @staticmethod
    def _queue(args: Args) -> str:
        queue = (args.text("queue") or "").strip()
        if not queue or len(queue) > 200:
            raise Refused(400, "Name a queue (up to 200 characters).")
        return queue

    # -- dead letters ---------------------------------------------------------------------------
    async def requeue(self, request: Request, args: Args) -> tuple[str, str]:
        queue, ids = request.path_params["queue"], self._letters(args)
        count = await run_in_threadpool(lambda: self.app.control.retry_dead(queue, ids))
        return "/queues", f"Requeued {count} dead letter{'s' * (count != 1)} of {queue}."

    async def drop(self, request: Request, args: Args) -> tuple[str, str]:
        queue, ids = request.path_params["queue"], self._letters(args)
        count = await run_in_threadpool(lambda: self.app.control.drop_dead(queue, ids))
        return "/queues", f"Dropped {count} dead letter{'s' * (count != 1)} of {queue}."

    @staticmethod
    def _letters(args: Args) -> list[str] | None:
        """One letter (``id``), or all of the queue's when the form says ``all``."""
        if args.text("all"):
            return None
        letter = args.text("id")
        if not letter:
            raise Refused(400, "Name a dead letter (id), or ask for all of them.")
        return [letter]

    # -- schedules ------------------------------------------------------------------------------
    async def _schedule(self, request: Request, change: Callable[[Any, str], Any], done: str) -> tuple[str, str]:
        from ..beat import Schedule

        name = str(request.path_params["name"])
        try:
            outcome = await run_in_threadpool(lambda: change(Schedule(self.app), name))
        except ConfigurationError as exc:
            raise Refused(404, str(exc)) from None
        extra = f" as {outcome.id}" if getattr(outcome, "id", None) else ""
        return "/schedules", f"{name}: {done}{extra}."

    async def pause(self, request: Request, args: Args) -> tuple[str, str]:
        return await self._schedule(request, lambda s, n: s.pause(n), "paused; beat sends nothing until resumed")

    async def resume(self, request: Request, args: Args) -> tuple[str, str]:
        return await self._schedule(request, lambda s, n: s.resume(n), "resumed from its next tick")

    async def run_now(self, request: Request, args: Args) -> tuple[str, str]:
        return await self._schedule(request, lambda s, n: s.run_now(n), "sent now")


ROUTES = (("/tasks/{task_id}/retry", "retry"), ("/tasks/{task_id}/revoke", "revoke"),
          ("/tasks/{task_id}/terminate", "terminate"),
          ("/workers/{worker}/shutdown", "shutdown"), ("/workers/{worker}/pool-grow", "pool_grow"),
          ("/workers/{worker}/pool-shrink", "pool_shrink"), ("/workers/{worker}/add-consumer", "add_consumer"),
          ("/workers/{worker}/cancel-consumer", "cancel_consumer"),
          ("/queues/{queue}/dead-letters/requeue", "requeue"), ("/queues/{queue}/dead-letters/drop", "drop"),
          ("/schedules/{name}/pause", "pause"), ("/schedules/{name}/resume", "resume"),
          ("/schedules/{name}/run-now", "run_now"))


def router(dash: Dashboard) -> APIRouter:
    actions = Actions(dash)
    out = APIRouter(include_in_schema=False)
    for path, name in ROUTES:
        out.add_api_route(path, actions.wrap(getattr(actions, name)), methods=["POST"])
    return out
