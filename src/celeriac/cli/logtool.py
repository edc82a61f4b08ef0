"""``celeriac logtool``: read worker log files (Celery's command, for celeriac's log lines).

A worker logs ``Task <name>[<id>] received`` when it starts a task, then one line with its outcome
(``succeeded in``, ``raised unexpected:`` followed by the traceback, ``raised expected:``,
``retry:``, ``rejected:``). The subcommands fold those lines: ``stats`` counts, ``errors`` prints
the failures, ``traces`` their tracebacks, ``incomplete`` the tasks started and never finished.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import click

LINE_START = re.compile(r"^\[\d{4}-\d\d-\d\d ")
TASK_LINE = re.compile(r"\] Task (?P<name>\S+?)\[(?P<id>[^\]]+)\] (?P<what>received|succeeded|raised unexpected|"
                       r"raised expected|retry|rejected|revoked)")
FAILED = ("raised unexpected", "rejected")
DONE = ("succeeded", "raised unexpected", "raised expected", "rejected", "revoked")


@dataclass
class LogAudit:
    """What a set of worker log lines says about tasks."""

    started: dict[str, str] = field(default_factory=dict)  # id -> name, in order
    finished: set[str] = field(default_factory=set)
    by_name: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)

    def feed(self, lines: Iterable[str]) -> LogAudit:
        trace: list[str] | None = None
        for raw in lines:
            line = raw.rstrip("\n")
            if not LINE_START.match(line):
                if trace is not None:  # a traceback continues the error line above it
                    trace.append(line)
                continue
            self._close(trace)
            trace = None
            found = TASK_LINE.search(line)
            if not found:
                continue
            task_id, name, what = found["id"], found["name"], found["what"]
            if what == "received":
                self.started[task_id] = name
                self.by_name[name] += 1
                continue
            self.outcomes[what] += 1
            if what in DONE:
                self.finished.add(task_id)
            if what in FAILED:
                self.errors.append(line)
                if what == "raised unexpected":
                    trace = [line]
        self._close(trace)
        return self

    def _close(self, trace: list[str] | None) -> None:
        if trace is not None and len(trace) > 1:
            self.traces.append("\n".join(trace))

    def incomplete(self) -> Iterator[tuple[str, str]]:
        return ((i, n) for i, n in self.started.items() if i not in self.finished)


def _audit(files: tuple[str, ...]) -> LogAudit:
    audit = LogAudit()
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                audit.feed(f)
        except OSError as exc:
            raise click.ClickException(f"cannot read log file {path!r}: {exc.strerror}") from None
    return audit


FILES = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))


@click.group()
def logtool() -> None:
    """Read worker log files: stats, errors, traces, incomplete."""


@logtool.command()
@FILES
def stats(files: tuple[str, ...]) -> None:
    """Count tasks started, succeeded and failed, and tasks started by name."""
    audit = _audit(files)
    o = audit.outcomes
    click.echo(f"Task total: {len(audit.started)}\nTask errors: {o['raised unexpected'] + o['rejected']}\n"
               f"Task success: {o['succeeded']}\nTask completed: {len(audit.finished)}\n"
               f"Task retries: {o['retry']}\nTasks\n=====")
    for name, count in audit.by_name.most_common():
        click.echo(f"{name}: {count}")


@logtool.command()
@FILES
def errors(files: tuple[str, ...]) -> None:
    """Print the line of every task that failed or was rejected."""
    for line in _audit(files).errors:
        click.echo(line)


@logtool.command()
@FILES
def traces(files: tuple[str, ...]) -> None:
    """Print the traceback of every failed task."""
    for trace in _audit(files).traces:
        click.echo(f"{trace}\n")


@logtool.command()
@FILES
def incomplete(files: tuple[str, ...]) -> None:
    """Print the tasks started and never finished (their worker died, or is still running them)."""
    for task_id, name in _audit(files).incomplete():
        click.echo(f"{name}[{task_id}]")
