"""``celeriac call``, ``result`` and ``purge``."""

from __future__ import annotations

import json
from typing import Any

import click

from ..config import suggest
from ..exceptions import ResultTimeout
from .context import CLIContext


def _json(value: str | None, what: str, kind: type) -> Any:
    if value is None:
        return kind()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg} at column {exc.colno}", param_hint=what) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {'array' if kind is list else 'object'}", param_hint=what)
    return parsed


@click.command()
@click.argument("name")
@click.option("-a", "--args", "args_json", help="Positional arguments as a JSON array.")
@click.option("-k", "--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--countdown", type=float, help="Seconds to wait before running.")
@click.option("--eta", help="ISO 8601 time to run at.")
@click.option("--expires", type=float, help="Seconds after which it is discarded if not started.")
@click.option("-Q", "--queue", help="Queue to send to.")
@click.option("--priority", type=click.IntRange(0, 9), help="0-9, higher runs first.")
@click.option("--force", is_flag=True, help="Send even when the app does not know the task name.")
@click.pass_obj
def call(obj: CLIContext, name: str, args_json: str | None, kwargs_json: str | None, countdown: float | None,
         eta: str | None, expires: float | None, queue: str | None, priority: int | None, force: bool) -> None:
    """Send a task by name and print its id."""
    from datetime import datetime

    app = obj.app
    args = _json(args_json, "--args", list)
    kwargs = _json(kwargs_json, "--kwargs", dict)
    app.finalize()
    if not force and app.tasks and name not in app.tasks:
        raise click.ClickException(f"unknown task {name!r}{suggest(name, app.tasks)}; "
                                   "pass --force to send it anyway")
    when = None
    if eta:
        try:
            when = datetime.fromisoformat(eta)
        except ValueError:
            raise click.BadParameter("not an ISO 8601 time", param_hint="--eta") from None
    result = app.send_task(name, args, kwargs, countdown=countdown, eta=when, expires=expires,
                           queue=queue, priority=priority)
    click.echo(result.id)


@click.command()
@click.argument("task_id")
@click.option("-t", "--timeout", type=float, help="Seconds to wait (default: forever).")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the traceback of a failure.")
@click.option("--task", "task_name", help="The task's name, so its own result class reads it.")
@click.pass_obj
def result(obj: CLIContext, task_id: str, timeout: float | None, show_traceback: bool,
           task_name: str | None) -> None:
    """Wait for a task's result and print it: the value on stdout (what scripts read, as Celery
    prints it), its state and the worker that ran it on stderr; a failure prints the exception
    (its traceback with --traceback) and exits 1."""
    app = obj.app
    if task_name is not None and task_name not in app.tasks:
        raise click.BadParameter(f"unknown task {task_name!r}{suggest(task_name, list(app.tasks))}",
                                 param_hint="--task")
    handle = app.tasks[task_name].AsyncResult(task_id) if task_name else app.AsyncResult(task_id)
    try:
        value = handle.get(timeout=timeout, propagate=False)
    except ResultTimeout:
        raise click.ClickException(f"task {task_id} not ready after {timeout}s (state {handle.state})") from None
    worker = handle.worker
    click.echo(f"{handle.state}{f' on {worker}' if worker else ''}", err=True)
    if handle.failed():
        click.echo(handle.traceback.rstrip() if show_traceback and handle.traceback
                   else f"{type(value).__name__}: {value}")
        raise SystemExit(1)
    click.echo(json.dumps(value, default=str) if not isinstance(value, str) else value)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("-Q", "--queues", help="Comma-separated queues (default: the app's queues).")
@click.option("-X", "--exclude-queues", help="Comma-separated queues to leave alone.")
@click.pass_obj
def purge(obj: CLIContext, force: bool, queues: str | None, exclude_queues: str | None) -> None:
    """Delete every waiting task (ready and delayed) from queues. Running tasks are untouched."""
    app = obj.app
    names = [q for q in (queues.split(",") if queues else app.queues()) if q]
    if exclude_queues:
        names = [q for q in names if q not in set(exclude_queues.split(","))]
    if not force:
        click.confirm(f"WARNING: This will remove all tasks from {'queue' if len(names) == 1 else 'queues'}: "
                      f"{', '.join(names)}.\n         There is no undo for this operation!\n\n"
                      "    (to skip this prompt use the -f option)\n\nAre you sure you want to delete all tasks",
                      abort=True)
    count = app.broker.purge(names)
    if count:
        click.echo(f"Purged {count} {'message' if count == 1 else 'messages'} from {len(names)} known task "
                   f"{'queue' if len(names) == 1 else 'queues'}.")
    else:
        click.echo("No messages purged from {} {}.".format(len(names), "queue" if len(names) == 1 else "queues"))


COMMANDS = [call, result, purge]
