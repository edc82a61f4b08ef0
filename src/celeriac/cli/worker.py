"""``celeriac worker``."""

from __future__ import annotations

import os

import click

from ..worker import POOLS, Worker
from ..worker import logs as worker_logs
from .context import CLIContext


def _split(value: tuple[str, ...]) -> list[str]:
    return [q.strip() for item in value for q in item.split(",") if q.strip()]


@click.command()
@click.option("-l", "--loglevel", default="WARNING", show_default=True, help="debug, info, warning, error.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Pool size (default: CPU count).")
@click.option("-Q", "--queues", multiple=True, help="Queues to consume, comma-separated.")
@click.option("-X", "--exclude-queues", multiple=True, help="Queues not to consume.")
@click.option("-n", "--hostname", help="Node name (default celeriac@%h).")
@click.option("-P", "--pool", type=click.Choice(POOLS), help="Pool implementation (default prefork).")
@click.option("--prefetch-multiplier", type=click.IntRange(min=1), help="Messages each process leases ahead.")
@click.option("--max-tasks-per-child", type=click.IntRange(min=1), help="Recycle a process after N tasks.")
@click.option("--max-memory-per-child", type=click.IntRange(min=1),
              help="Recycle a process above this resident memory (KiB).")
@click.option("-f", "--logfile", type=click.Path(dir_okay=False), help="Log to this file instead of stderr.")
@click.option("--pidfile", type=click.Path(dir_okay=False), help="Write the supervisor's pid here.")
@click.option("-B", "--beat", is_flag=True, help="Also run the periodic scheduler in this worker.")
@click.option("-E", "--task-events", is_flag=True, help="Accepted for Celery compatibility (events are on).")
@click.option("--without-gossip", is_flag=True, hidden=True)
@click.option("--without-mingle", is_flag=True, hidden=True)
@click.option("--without-heartbeat", is_flag=True, hidden=True)
@click.option("-O", "optimization", hidden=True)
@click.option("-q", "--quiet", is_flag=True, help="No banner.")
@click.pass_obj
def worker(obj: CLIContext, loglevel: str, concurrency: int | None, queues: tuple[str, ...],
           exclude_queues: tuple[str, ...], hostname: str | None, pool: str | None,
           prefetch_multiplier: int | None, max_tasks_per_child: int | None,
           max_memory_per_child: int | None, logfile: str | None, pidfile: str | None, beat: bool,
           task_events: bool, without_gossip: bool, without_mingle: bool, without_heartbeat: bool,
           optimization: str | None, quiet: bool) -> None:
    """Start a worker: ``celeriac -A proj worker -l info -c 2 -Q high,low``."""
    # The app first: its settings (worker_hijack_root_logger, worker_log_format) and the
    # logging signals it connects decide how logging is set up.
    app = obj.app
    worker_logs.setup(loglevel, fmt=app.conf.worker_log_format, logfile=logfile,
                      hijack=bool(app.conf.worker_hijack_root_logger))
    selected = _split(queues) or None
    if exclude_queues:
        excluded = set(_split(exclude_queues))
        selected = [q for q in (selected or app.queues()) if q not in excluded]
        if not selected:
            raise click.UsageError("every queue is excluded by -X")
    if beat:
        # The scheduler runs beside the worker, in this (the supervisor's) process, on a broker
        # connection of its own; it stops when the worker announces its shutdown.
        from .. import signals
        from ..beat import Scheduler

        scheduler = Scheduler(app)
        signals.worker_shutdown.connect(lambda **_: scheduler.stop())
        scheduler.start_thread()
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        code = Worker(app, hostname=hostname, concurrency=concurrency, queues=selected, pool=pool,
                      prefetch_multiplier=prefetch_multiplier, max_tasks_per_child=max_tasks_per_child,
                      max_memory_per_child=max_memory_per_child, quiet=quiet).start()
    finally:
        if pidfile and os.path.exists(pidfile):
            os.unlink(pidfile)
    raise SystemExit(code)
