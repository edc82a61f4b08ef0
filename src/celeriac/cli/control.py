"""``status``, ``inspect``, ``control``, ``revoke``, ``queues``, ``dead`` and ``events``.

Replies are printed the way ``celery inspect`` prints them ("-> node: OK", the reply indented
under it, "- empty -", "N nodes online."), so habits and grep pipelines carry over; ``--json``
prints one JSON document instead. What the broker holds (delayed tasks, queue depths, dead
letters) is read from the broker, so those commands work with no worker running.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ..config import parse_rate, suggest
from ..exceptions import ConfigurationError
from .context import CLIContext

if TYPE_CHECKING:
    from ..app import Celery

# Celery exits with EX_UNAVAILABLE when no worker answers; scripts test for it.
EX_UNAVAILABLE = 69

INSPECT = ("active", "reserved", "scheduled", "registered", "stats", "ping", "active_queues", "conf",
           "revoked", "query_task", "report")


class NoReplies(click.ClickException):
    exit_code = EX_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("No nodes replied within time constraint")


# -- shared options and printing -----------------------------------------------------------------
def _nodes(value: str | None) -> list[str] | None:
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    return names or None


def _split(value: str | None) -> list[str]:
    return [q.strip() for q in (value or "").split(",") if q.strip()]


def remote_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("-j", "--json", "as_json", is_flag=True, help="Print one JSON document.")(fn)
    fn = click.option("-t", "--timeout", type=click.FloatRange(min=0), default=1.0, show_default=True,
                      help="Seconds to wait for replies.")(fn)
    return click.option("-d", "--destination", help="Only these workers (comma-separated node names).")(fn)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, indent=4, sort_keys=True, default=str)
    if isinstance(value, list):
        return "\n".join(f"* {item}" for item in value) if value else "- empty -"
    return repr(value)


def pretty(reply: Any) -> tuple[str, str]:
    """``(status, text)`` of one node's reply: OK or ERROR, and the reply as Celery shows it."""
    if isinstance(reply, dict) and len(reply) == 1 and ("ok" in reply or "error" in reply):
        key = next(iter(reply))
        return ("OK" if key == "ok" else "ERROR"), _text(reply[key])
    return "OK", _text(reply)


def say_replies(replies: dict[str, Any]) -> bool:
    """Print each node's reply; True if any node replied with an error."""
    failed = False
    for node in sorted(replies):
        status, text = pretty(replies[node])
        failed |= status == "ERROR"
        click.echo(f"-> {node}: {status}")
        click.echo(textwrap.indent(text, "    "))
    return failed


def _finish(replies: dict[str, Any], as_json: bool, footer: bool = False) -> None:
    """Print the replies; exit 1 when a node replied with an error, so scripts can tell."""
    if not replies:
        raise NoReplies()
    if as_json:
        click.echo(json.dumps(replies, default=str))
        failed = any(pretty(reply)[0] == "ERROR" for reply in replies.values())
    else:
        failed = say_replies(replies)
        if footer:
            click.echo(f"\n{_plural(len(replies), 'node')} online.")
    if failed:
        raise SystemExit(1)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _merge(replies: list[dict[str, Any]] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for one in replies or []:
        merged.update(one)
    return merged


def _ago(when: float) -> str:
    seconds = max(0.0, time.time() - when)
    return f"{seconds:.1f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat()


# -- status ----------------------------------------------------------------------------------------
@click.command()
@remote_options
@click.pass_obj
def status(obj: CLIContext, destination: str | None, timeout: float, as_json: bool) -> None:
    """Show the workers that answer a ping, and those recently seen that no longer do."""
    app = obj.app
    nodes = _nodes(destination)
    replied = _merge(app.control.ping(destination=nodes, timeout=timeout))
    registry = {w["hostname"]: w for w in app.control.workers() if nodes is None or w["hostname"] in nodes}
    if as_json:
        click.echo(json.dumps({name: {"replied": name in replied, "alive": registry.get(name, {}).get("alive", True),
                                      "last_seen": registry.get(name, {}).get("last_seen")}
                               for name in sorted(set(replied) | set(registry))}))
    else:
        for name in sorted(replied):
            click.echo(f"-> {name}: OK")
        for name in sorted(set(registry) - set(replied)):
            worker = registry[name]
            # Heartbeating but silent means its remote-control thread is stuck or the timeout too short.
            state = "NO REPLY (heartbeating)" if worker["alive"] else "OFFLINE"
            click.echo(f"-> {name}: {state}, last seen {_ago(worker['last_seen'])}")
        if replied:
            click.echo(f"\n{_plural(len(replied), 'node')} online.")
    if not replied:
        raise NoReplies()


# -- inspect ---------------------------------------------------------------------------------------
def _scheduled(app: Celery) -> dict[str, Any]:
    """Delayed tasks wait in the broker, not in a worker: Celery's shape, under node "broker"."""
    items = [{"eta": _iso(s["eta"]), "priority": s["priority"], "queue": s["queue"], "request": s["request"]}
             for s in app.control.scheduled()]
    return {"broker": items}


@click.command()
@click.argument("what", metavar="COMMAND", required=False)
@click.argument("ids", nargs=-1, metavar="[TASK_ID]...")
@remote_options
@click.option("-l", "--list", "list_commands", is_flag=True, help="List the inspect commands and exit.")
@click.pass_obj
def inspect(obj: CLIContext, what: str | None, ids: tuple[str, ...], destination: str | None, timeout: float,
            as_json: bool, list_commands: bool) -> None:
    """Ask workers what they are doing: active, reserved, scheduled, registered, stats, ping,
    active_queues, conf, revoked, report, or query_task TASK_ID..."""
    if list_commands:
        click.echo("\n".join(f"{name}{' TASK_ID...' if name == 'query_task' else ''}" for name in INSPECT))
        return
    if what is None:
        raise click.UsageError("missing COMMAND (see --list)")
    if what not in INSPECT:
        raise click.ClickException(f"unknown inspect command {what!r}{suggest(what, list(INSPECT))}; "
                                   f"choose from {', '.join(INSPECT)}")
    if what == "query_task" and not ids:
        raise click.ClickException("query_task needs at least one task id")
    if ids and what != "query_task":
        raise click.ClickException(f"inspect {what} takes no arguments")
    app = obj.app
    if what == "scheduled":
        replies = _scheduled(app)
    else:
        found = app.control.inspect(destination=_nodes(destination), timeout=timeout)
        replies = (found.query_task(*ids) if ids else getattr(found, what)()) or {}
    _finish(replies, as_json, footer=what != "scheduled")


# -- control ---------------------------------------------------------------------------------------
def _number(value: str, what: str, kind: type = float) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise click.ClickException(f"{what} must be a {'whole ' if kind is int else ''}number, not {value!r}")
    if number < 0:
        raise click.ClickException(f"{what} cannot be negative ({value})")
    return number


def _rate(value: str) -> str:
    try:
        parse_rate(value)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc))
    return value


def _pool_size(args: tuple[str, ...]) -> int:
    n = _number(args[0], "N", int) if args else 1
    if n < 1:
        raise click.ClickException("N must be at least 1")
    return int(n)


MANY = 100_000
# command -> (usage, fewest and most arguments, the command's arguments from them)
CONTROL: dict[str, tuple[str, int, int, Callable[[tuple[str, ...]], dict[str, Any]]]] = {
    "rate_limit": ("TASK_NAME RATE (e.g. 10/m; 0 removes the limit)", 2, 2,
                   lambda a: {"task_name": a[0], "rate_limit": _rate(a[1])}),
    # 0 means no limit, as in the task options.
    "time_limit": ("TASK_NAME SOFT_SECONDS [HARD_SECONDS]", 2, 3,
                   lambda a: {"task_name": a[0], "soft": _number(a[1], "the soft limit") or None,
                              "hard": (_number(a[2], "the hard limit") or None) if len(a) > 2 else None}),
    "add_consumer": ("QUEUE", 1, 1, lambda a: {"queue": a[0]}),
    "cancel_consumer": ("QUEUE", 1, 1, lambda a: {"queue": a[0]}),
    "pool_grow": ("[N]", 0, 1, lambda a: {"n": _pool_size(a)}),
    "pool_shrink": ("[N]", 0, 1, lambda a: {"n": _pool_size(a)}),
    "shutdown": ("", 0, 0, lambda a: {}),
    "enable_events": ("", 0, 0, lambda a: {}),
    "disable_events": ("", 0, 0, lambda a: {}),
    "autoscale": ("MAX MIN", 2, 2, lambda a: {"max": _pool_size(a[:1]), "min": int(_number(a[1], "MIN", int))}),
    "revoke": ("TASK_ID...", 1, MANY, lambda a: {"task_ids": list(a), "terminate": False, "signal": "SIGTERM"}),
    "terminate": ("SIGNAL TASK_ID...", 2, MANY,
                  lambda a: {"task_ids": list(a[1:]), "terminate": True, "signal": _signal_name(a[0])}),
    "revoke_by_stamped_headers": ("HEADER=VALUE...", 1, MANY,
                                  lambda a: {"headers": _stamp_pairs(a), "terminate": False, "signal": "SIGTERM"}),
}


def _stamp_pairs(args: tuple[str, ...]) -> dict[str, list[Any]]:
    from ..control import stamp_headers_of

    try:
        return stamp_headers_of(list(args))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _signal_name(name: str) -> str:
    text = name.upper()
    if text.isdigit():
        return text
    full = text if text.startswith("SIG") else f"SIG{text}"
    if not isinstance(getattr(signal, full, None), signal.Signals):
        raise click.ClickException(f"unknown signal {name!r} (e.g. SIGTERM, SIGKILL, SIGUSR1)")
    return full


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("command", metavar="COMMAND", required=False)
@click.argument("args", nargs=-1, metavar="[ARGS]...")
@remote_options
@click.option("-l", "--list", "list_commands", is_flag=True, help="List the control commands and exit.")
@click.pass_obj
def control(obj: CLIContext, command: str | None, args: tuple[str, ...], destination: str | None, timeout: float,
            as_json: bool, list_commands: bool) -> None:
    """Steer workers: rate_limit TASK RATE, time_limit TASK SOFT [HARD], add_consumer QUEUE,
    cancel_consumer QUEUE, pool_grow [N], pool_shrink [N], autoscale MAX MIN, enable_events, disable_events,
    shutdown, revoke ID..., terminate SIGNAL ID..., revoke_by_stamped_headers HEADER=VALUE..."""
    if list_commands:
        click.echo("\n".join(f"{name} {spec[0]}".rstrip() for name, spec in CONTROL.items()))
        return
    if command is None:
        raise click.UsageError("missing COMMAND (see --list)")
    if command not in CONTROL:
        raise click.ClickException(f"unknown control command {command!r}{suggest(command, list(CONTROL))}; "
                                   f"choose from {', '.join(CONTROL)}")
    usage, fewest, most, parse = CONTROL[command]
    if not fewest <= len(args) <= most:
        raise click.ClickException(f"usage: control {command} {usage}".rstrip())
    arguments = parse(args)
    app = obj.app
    if command in ("revoke", "terminate"):
        _send_revoke(app, arguments, _nodes(destination), timeout, as_json)
        return
    if command == "revoke_by_stamped_headers":
        # Through app.control: the revocation is kept in the broker for workers that start later.
        replies = _merge(app.control.revoke_by_stamped_headers(arguments["headers"], destination=_nodes(destination),
                                                               reply=True, timeout=timeout))
        if replies:
            _finish(replies, as_json)
        else:
            click.echo(json.dumps({}) if as_json else
                       "revoked tasks so stamped; no worker replied: a worker that picks one up later skips it")
        return
    replies = _merge(app.control.broadcast(command, arguments, destination=_nodes(destination), reply=True,
                                           timeout=timeout))
    _finish(replies, as_json)


def _send_revoke(app: Celery, arguments: dict[str, Any], nodes: list[str] | None, timeout: float,
                 as_json: bool) -> None:
    ids = arguments["task_ids"]
    replies = _merge(app.control.revoke(ids, destination=nodes, terminate=arguments["terminate"],
                                        signal=arguments["signal"], reply=True, timeout=timeout))
    if replies:
        _finish(replies, as_json)
        return
    # The revocation is kept in the broker, so it holds for workers that start later.
    if as_json:
        click.echo(json.dumps({}))
    else:
        click.echo(f"revoked {_plural(len(ids), 'task')}; no worker replied: "
                   "a worker that picks it up later skips it")


@click.command()
@click.argument("task_ids", nargs=-1, required=True)
@click.option("--terminate", is_flag=True, help="Also stop the task where it runs.")
@click.option("-s", "--signal", "signal_name", default="SIGTERM", show_default=True,
              help="Signal sent with --terminate.")
@remote_options
@click.pass_obj
def revoke(obj: CLIContext, task_ids: tuple[str, ...], terminate: bool, signal_name: str, destination: str | None,
           timeout: float, as_json: bool) -> None:
    """Revoke tasks: not started yet, they are skipped (on every worker, also ones that start
    later); with --terminate, a running one is stopped and recorded REVOKED."""
    arguments = {"task_ids": list(task_ids), "terminate": terminate, "signal": _signal_name(signal_name)}
    _send_revoke(obj.app, arguments, _nodes(destination), timeout, as_json)


# -- events ----------------------------------------------------------------------------------------
@click.command()
@click.option("-d", "--dump", is_flag=True, help="Print one plain line per event instead of the live view.")
@click.option("-j", "--json", "as_json", is_flag=True, help="With --dump: one JSON object per line.")
@click.option("--from-start", is_flag=True, help="Replay the history the stream keeps first.")
@click.option("--max-events", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.pass_obj
def events(obj: CLIContext, dump: bool, as_json: bool, from_start: bool, max_events: int | None,
           duration: float | None) -> None:
    """Watch the cluster live (workers, queues, recent tasks), or --dump the event stream."""
    from .events_view import dump_events, live_view

    deadline = None if duration is None else time.monotonic() + duration
    try:
        if dump:
            dump_events(obj.app, from_start=from_start, max_events=max_events, deadline=deadline, as_json=as_json)
        else:
            live_view(obj.app, from_start=from_start, max_events=max_events, deadline=deadline)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # `events --dump | head`: the reader left. Point stdout at /dev/null so the flush at
        # exit does not raise a second time, and end quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


COMMANDS = [status, inspect, control, revoke, events]
