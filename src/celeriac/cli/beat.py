"""``celeriac beat``: run the periodic scheduler, or ``--list`` the schedule."""

from __future__ import annotations

import logging
import os
import signal
from datetime import datetime
from typing import Any

import click

from .. import __version__
from ..brokers.base import redact_url
from ..worker import logs as worker_logs
from ..worker.nodenames import node_name
from .context import CLIContext

logger = logging.getLogger("celeriac.beat")


@click.command()
@click.option("-l", "--loglevel", default="WARNING", show_default=True, help="debug, info, warning, error.")
@click.option("-f", "--logfile", type=click.Path(dir_okay=False), help="Log to this file instead of stderr.")
@click.option("--pidfile", type=click.Path(dir_okay=False), help="Write this process's pid here.")
@click.option("--max-interval", type=click.FloatRange(min=0, min_open=True),
              help="Longest sleep between two looks at the schedule, seconds (beat_max_loop_interval).")
@click.option("--list", "list_entries", is_flag=True, help="Show each entry, its schedule and next runs, then exit.")
@click.option("--next", "next_count", type=click.IntRange(min=1, max=20), default=3, show_default=True,
              help="How many next runs --list shows.")
@click.option("-s", "--schedule", "schedule_file", help="Ignored: there is no schedule file (state is in the broker).")
@click.option("-S", "--scheduler", "scheduler_cls",
              help="Refused: celeriac has one scheduler, its schedule in the broker (beat.Schedule).")
@click.option("-n", "--hostname", help="This beat's name in its banner and log (default celeriac-beat@%h).")
@click.option("--no-enable-remote-control", "no_remote_control", is_flag=True,
              help="Accepted for Celery compatibility: beat has no remote control to turn off.")
@click.option("--detach", is_flag=True, hidden=True)
@click.option("-q", "--quiet", is_flag=True, help="No banner.")
@click.pass_obj
def beat(obj: CLIContext, loglevel: str, logfile: str | None, pidfile: str | None, max_interval: float | None,
         list_entries: bool, next_count: int, schedule_file: str | None, scheduler_cls: str | None,
         detach: bool, quiet: bool, hostname: str | None = None, no_remote_control: bool = False) -> None:
    """Run the periodic scheduler: ``celeriac -A proj beat -l info``. Any number may run."""
    if detach:
        raise click.UsageError("--detach is not supported: run beat under systemd, supervisor or docker")
    if scheduler_cls:
        refuse_scheduler(scheduler_cls)
    app = obj.app
    if list_entries:
        _print_list(app, next_count)
        return
    worker_logs.setup(loglevel, fmt=app.conf.worker_log_format, logfile=logfile,
                      hijack=bool(app.conf.worker_hijack_root_logger))
    if schedule_file:
        logger.debug("beat: -s/--schedule %s ignored: the schedule's state lives in the broker", schedule_file)
    from ..beat import Scheduler

    scheduler = Scheduler(app, max_interval=max_interval)
    node = node_name(hostname or "celeriac-beat@%h")
    if not (quiet or obj.quiet):
        click.echo(_banner(app, scheduler, node))
    logger.info("beat %s: starting", node)
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")

    def on_signal(signum: int, frame: Any) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        scheduler.run()
    finally:
        if pidfile and os.path.exists(pidfile):
            os.unlink(pidfile)


def _banner(app: Any, scheduler: Any, node: str) -> str:
    zone = scheduler.tz
    entries = scheduler.schedule.code_entries()
    return "\n".join([
        f"celeriac beat v{__version__} is starting.",
        f"Node -> {node}",
        f"LocalTime -> {datetime.now(zone).strftime('%Y-%m-%d %H:%M:%S %Z')}",
        "Configuration ->",
        f"    . broker -> {redact_url(app.broker_url)}",
        "    . schedule -> kept in the broker (no schedule file; any number of beats may run)",
        f"    . timezone -> {getattr(zone, 'key', zone)}",
        f"    . entries in code -> {len(entries)}",
        f"    . maxinterval -> {scheduler.max_interval:g} seconds",
        "",
    ])


def _print_list(app: Any, count: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..beat import Schedule

    schedule = Schedule(app)
    entries = schedule.entries()
    now = schedule.broker.now()
    zone = schedule.tz
    table = Table(title=f"beat schedule ({len(entries)} entries, times in {getattr(zone, 'key', zone)})")
    for column in ("entry", "task", "schedule", "next runs", "last run", "options", "missed", "state"):
        table.add_column(column, overflow="fold")
    for name, entry in sorted(entries.items()):
        runs = entry.schedule.next_runs(count, now, zone)
        precise = any(r.second or r.microsecond for r in runs)
        shown = [r.strftime("%Y-%m-%d %H:%M:%S" if precise else "%Y-%m-%d %H:%M") + _zone_suffix(r, zone)
                 for r in runs]
        last = schedule.last_run(name)
        last_text = "-"
        if last is not None and last.sent is not None:
            last_text = datetime.fromtimestamp(last.tick, entry.schedule.zone(zone)).strftime("%Y-%m-%d %H:%M:%S")
        options = ", ".join(f"{k}={v}" for k, v in sorted(entry.options.items())) or "-"
        state = "paused" if entry.paused else "active"
        if entry.source == "runtime":
            state += " (added at run time)"
        table.add_row(name, entry.task, entry.schedule.human(), "\n".join(shown), last_text, options,
                      entry.missed, state)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped: do not squeeze the table into 80 columns
    console.print(table)
    if not entries:
        console.print("No periodic entries: declare them in beat_schedule or with app.add_periodic_task().")


def _zone_suffix(moment: datetime, zone: Any) -> str:
    return "" if moment.tzinfo == zone else f" {moment.tzname()}"


def refuse_scheduler(scheduler_cls: str) -> None:
    # A database scheduler (django_celery_beat's) would be ignored without a word otherwise:
    # its entries are edited in the admin and would silently never run.
    raise click.UsageError(
        f"--scheduler {scheduler_cls} is not supported: celeriac's schedule lives in the broker; "
        "declare entries in beat_schedule, or change them at run time with "
        "celeriac.beat.Schedule(app).add(...)/remove/pause/resume")
