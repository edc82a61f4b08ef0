"""What ``celeriac events`` shows: the plain ``--dump`` lines and the rich live view, plus the
tables ``queues`` and ``dead list`` print.

The live view folds the event stream into the latest state of each recent task and polls the
broker once a second for the worker registry and queue depths (which the stream does not
carry), so it is right about workers even when their events are turned off.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..exceptions import BrokerError
from ..monitor import TaskStates, follow
from ..monitor.reader import FROM_NOW, FROM_START, Gap

if TYPE_CHECKING:
    from ..app import Celery
    from ..brokers.base import QueueStats

READ_WAIT = 0.25      # longest wait for events before the view refreshes anyway
POLL_EVERY = 1.0      # registry and queue depths
KEEP_TASKS = 1000     # tasks remembered by the live view
SHOW_TASKS = 15       # tasks shown
WIDE = 110            # columns needed to show whole task ids

STYLES = {"SUCCESS": "green", "FAILURE": "red", "DEAD": "red", "REVOKED": "magenta", "RETRY": "yellow",
          "REJECTED": "yellow", "STARTED": "cyan", "PROGRESS": "cyan"}


def console() -> Console:
    # Piped output is not cut at 80 columns, so ids stay whole for grep and copy-paste.
    return Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S.%f")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def _clock(ts: Any) -> str:
    return _when(ts)[11:23] if ts else ""


# -- --dump ----------------------------------------------------------------------------------------
def _field(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'" for c in value):
        return value
    # Quoted or compact JSON: every event stays on one line, however multi-line a traceback is.
    return json.dumps(value, default=str, separators=(",", ":"))


def format_event(event: dict[str, Any]) -> str:
    """``<hostname> [<time>] <type> <uuid> <name> key=value ...`` (no uuid/name for worker events)."""
    fields = dict(event)
    kind = str(fields.pop("type", "unknown"))
    line = f"{fields.pop('hostname', None) or '-'} [{_when(fields.pop('timestamp', None))}] {kind}"
    if kind.startswith("task-"):
        line += f" {fields.pop('uuid', None) or '-'} {fields.pop('name', None) or '-'}"
    rest = " ".join(f"{key}={_field(value)}" for key, value in sorted(fields.items()))
    return f"{line} {rest}" if rest else line


def dump_events(app: Celery, *, from_start: bool, max_events: int | None, deadline: float | None,
                as_json: bool) -> None:
    out = sys.stdout
    for batch in follow(app.broker, FROM_START if from_start else FROM_NOW, max_events=max_events,
                        deadline=deadline, wait=READ_WAIT, on_gap=_say_gap):
        for event in batch:
            out.write((json.dumps(event, default=str) if as_json else format_event(event)) + "\n")
        if batch:
            out.flush()


def _say_gap(gap: Gap) -> None:
    # On stderr: the dump on stdout stays events only, and a reader of it still learns of the hole.
    lost = "" if gap.entries is None else f" ({gap.entries} log entries)"
    print(f"celeriac events: events were lost after entry {gap.after} up to {gap.until}{lost}: the event log's "
          "cap trimmed them before they were read", file=sys.stderr, flush=True)


# -- tables ----------------------------------------------------------------------------------------
def queue_table(stats: list[QueueStats]) -> Table:
    table = Table(title="Queues", title_justify="left")
    table.add_column("Queue", no_wrap=True)
    for heading in ("Ready", "By priority", "Delayed", "Unacked", "Dead"):
        table.add_column(heading, justify="right" if heading != "By priority" else "left", no_wrap=True)
    for s in stats:
        # Higher priority runs first, so it is listed first.
        by_priority = " ".join(f"{p}:{n}" for p, n in reversed(list(enumerate(s.ready))) if n) or "-"
        table.add_row(s.name, str(s.ready_total), by_priority, str(s.delayed), str(s.unacked),
                      Text(str(s.dead), style="red" if s.dead else ""))
    return table


def dead_table(letters: list[dict[str, Any]]) -> Table:
    table = Table(title="Dead letters", title_justify="left")
    for heading in ("Queue", "Dead id", "Task id", "Task", "When"):
        table.add_column(heading, no_wrap=True)
    table.add_column("Reason")
    for letter in letters:
        table.add_row(letter["queue"], letter["id"], letter["task_id"] or "-", letter["task"] or "-",
                      _when(letter["time"])[:19], letter["reason"])
    return table


# -- the live view ---------------------------------------------------------------------------------
class ClusterView:
    """The latest state of recent tasks (from events), workers and queues (polled)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.tasks = TaskStates(keep=KEEP_TASKS)
        self.workers: list[dict[str, Any]] = []
        self.queues: list[QueueStats] = []
        self.seen = 0
        self.error = ""

    def apply(self, event: dict[str, Any]) -> None:
        self.seen += 1
        self.tasks.apply(event)

    def poll(self) -> None:
        from .queues import known_queues

        try:
            self.workers = sorted(self.app.control.workers(), key=lambda w: w["hostname"])
            self.queues = self.app.control.queues(known_queues(self.app))
            self.error = ""
        except BrokerError as exc:  # the view keeps its last picture while the broker is away
            self.failed(exc)

    def failed(self, exc: BrokerError) -> None:
        self.error = str(exc)

    def _workers_table(self) -> Table:
        table = Table(title="Workers", title_justify="left")
        for heading in ("Worker", "Status", "Active", "Processed", "Failed", "Pool", "Queues", "Last seen"):
            table.add_column(heading, no_wrap=True, justify="right" if heading in ("Active", "Processed",
                                                                                    "Failed") else "left")
        for w in self.workers:
            status = Text("online", style="green") if w["alive"] else Text("offline", style="red")
            table.add_row(w["hostname"], status, str(w.get("active", "")), str(w.get("processed", "")),
                          str(w.get("failed", "")), f"{w.get('pool', '')} x{w.get('concurrency', '')}",
                          ",".join(w.get("queues", [])), f"{max(0.0, time.time() - w['last_seen']):.1f}s ago")
        return table

    def _tasks_table(self, width: int) -> Table:
        table = Table(title=f"Recent tasks ({self.seen} events)", title_justify="left")
        for heading in ("Task id", "Name", "State", "Worker", "Received", "Runtime"):
            table.add_column(heading, no_wrap=True)
        # A whole uuid takes 36 columns; a narrow terminal gets its first 8, as git shows hashes.
        short = width < WIDE
        for task in self.tasks.recent(SHOW_TASKS):
            runtime = task.runtime
            # Dead letters are FAILURE in the result store; here they keep the name that says why.
            state = "DEAD" if task.dead_lettered and task.state == "FAILURE" else task.state
            table.add_row(task.uuid[:8] if short else task.uuid, task.name or "-",
                          Text(state, style=STYLES.get(state, "")),
                          task.worker or "-", _clock(task.received or task.sent or task.timestamp),
                          f"{runtime:.3f}s" if isinstance(runtime, (int, float)) else "")
        return table

    def render(self, width: int = WIDE) -> Group:
        parts: list[Any] = [self._workers_table(), queue_table(self.queues), self._tasks_table(width)]
        if self.error:
            parts.append(Text(f"broker: {self.error}", style="red"))
        return Group(*parts)


def live_view(app: Celery, *, from_start: bool, max_events: int | None, deadline: float | None) -> None:
    from rich.live import Live

    out = console()
    view = ClusterView(app)
    view.poll()
    if view.error:  # unreachable from the start: one error line beats an empty picture
        raise BrokerError(view.error)
    next_poll = time.monotonic() + POLL_EVERY
    with Live(view.render(out.width), console=out, auto_refresh=False, screen=False) as live:
        for batch in follow(app.broker, FROM_START if from_start else FROM_NOW, max_events=max_events,
                            deadline=deadline, wait=READ_WAIT, on_error=view.failed):
            for event in batch:
                view.apply(event)
            if time.monotonic() >= next_poll:
                view.poll()
                next_poll = time.monotonic() + POLL_EVERY
            live.update(view.render(out.width), refresh=True)
        view.poll()
        live.update(view.render(out.width), refresh=True)
    if not out.is_terminal:
        out.line()  # a terminal gets its last newline from Live; a pipe or file would not
