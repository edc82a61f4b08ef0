"""``celeriac worker``."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

import click

from ..worker import POOLS, Worker, file_name, node_name
from ..worker import autoscale as autoscaling
from ..worker import logs as worker_logs
from .context import CLIContext
from .daemon import detach as daemonize
from .daemon import read_pid, write_pidfile

logger = logging.getLogger("celeriac.worker")

# Celery's pools celeriac does not have, and what to use instead.
_OTHER_POOLS = {
    "eventlet": "-P threads (I/O-bound tasks in threads of one process), or -P asyncio for async def tasks",
    "gevent": "-P threads (I/O-bound tasks in threads of one process), or -P asyncio for async def tasks",
}


def _split(value: tuple[str, ...]) -> list[str]:
    return [q.strip() for item in value for q in item.split(",") if q.strip()]


def _pool(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value in POOLS:
        return value
    if value in _OTHER_POOLS:
        raise click.BadParameter(f"celeriac has no {value} pool: use {_OTHER_POOLS[value]}")
    raise click.BadParameter(f"unknown pool {value!r} (use {', '.join(POOLS)})")


def _autoscale(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    return autoscaling.parse(value) if value else None


def _explain_accepted(task_events: bool, without_gossip: bool, without_mingle: bool, without_heartbeat: bool,
                      optimization: str | None) -> None:
    """Celery options that mean nothing (more) here: say so in the log rather than silently."""
    if task_events:
        logger.info("-E: task events are always sent (worker_send_task_events, on by default)")
    if without_gossip:
        logger.info("--without-gossip: celeriac workers do not gossip; nothing to turn off")
    if without_mingle:
        logger.info("--without-mingle: revocations live in the broker, so there is no start-up sync to skip")
    if without_heartbeat:
        logger.info("--without-heartbeat: ignored; the heartbeat keeps this worker's task leases alive")
    if optimization:
        logger.info("-O %s: ignored; pool processes fetch for themselves (worker_prefetch_multiplier "
                    "sets how many each leases ahead), which is what -O fair asks for", optimization)


@click.command()
@click.option("-l", "--loglevel", default="WARNING", show_default=True, help="debug, info, warning, error.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Pool size (default: CPU count).")
@click.option("--autoscale", callback=_autoscale,
              help="max,min: grow the pool up to max while work waits, shrink to min when idle.")
@click.option("-Q", "--queues", multiple=True, help="Queues to consume, comma-separated.")
@click.option("-X", "--exclude-queues", multiple=True, help="Queues not to consume.")
@click.option("-n", "--hostname", help="Node name (default celeriac@%h; %h host, %n short host, %d domain, %i pid).")
@click.option("-P", "--pool", callback=_pool, help=f"Pool implementation: {', '.join(POOLS)} (default prefork).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Hard time limit in seconds (task_time_limit): the process is killed.")
@click.option("--soft-time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Soft time limit in seconds (task_soft_time_limit): SoftTimeLimitExceeded is raised.")
@click.option("--prefetch-multiplier", type=click.IntRange(min=1), help="Messages each process leases ahead.")
@click.option("--max-tasks-per-child", type=click.IntRange(min=1), help="Recycle a process after N tasks.")
@click.option("--max-memory-per-child", type=click.IntRange(min=1),
              help="Recycle a process above this resident memory (KiB).")
@click.option("-f", "--logfile", help="Log to this file instead of stderr (%n node, %p full node name, %h host).")
@click.option("--pidfile", help="Write the worker's pid here (%n, %p, %h as in --logfile); refused if it runs.")
@click.option("-D", "--detach", is_flag=True, help="Run in the background (logs go to --logfile).")
@click.option("-B", "--beat", is_flag=True, help="Also run the periodic scheduler in this worker.")
@click.option("-E", "--task-events", is_flag=True, help="Accepted for Celery compatibility (events are on).")
@click.option("--without-gossip", is_flag=True, help="Accepted for Celery compatibility (no gossip here).")
@click.option("--without-mingle", is_flag=True, help="Accepted for Celery compatibility (no mingle here).")
@click.option("--without-heartbeat", is_flag=True, help="Accepted and ignored: the heartbeat holds the leases.")
@click.option("-O", "--optimization", "optimization", type=click.Choice(("default", "fair")),
              help="Accepted for Celery compatibility (-O fair is how celeriac works).")
@click.option("-q", "--quiet", is_flag=True, help="No banner.")
@click.option("--purge", "--discard", "purge", is_flag=True,
              help="Delete every task waiting in this worker's queues before starting (no confirmation).")
@click.option("-I", "--include", multiple=True, help="More modules to import, comma-separated (the include setting).")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0, min_open=True),
              help="Seconds between heartbeats (worker_heartbeat_interval; at most a third of broker_lease_seconds).")
@click.option("--disable-prefetch", is_flag=True,
              help="Lease a task only when a process is free to run it (prefetch multiplier 1).")
@click.option("--pool-start-method", type=click.Choice(("fork", "spawn")),
              help="How pool processes start: fork (the only one celeriac has).")
@click.option("-S", "--scheduler", "scheduler_cls",
              help="Refused: the -B scheduler keeps its schedule in the broker (as `celeriac beat`).")
@click.pass_obj
def worker(obj: CLIContext, loglevel: str, concurrency: int | None, autoscale: tuple[int, int] | None,
           queues: tuple[str, ...], exclude_queues: tuple[str, ...], hostname: str | None, pool: str | None,
           time_limit: float | None, soft_time_limit: float | None,
           prefetch_multiplier: int | None, max_tasks_per_child: int | None,
           max_memory_per_child: int | None, logfile: str | None, pidfile: str | None, detach: bool,
           beat: bool, task_events: bool, without_gossip: bool, without_mingle: bool, without_heartbeat: bool,
           optimization: str | None, quiet: bool, purge: bool, include: tuple[str, ...],
           heartbeat_interval: float | None, disable_prefetch: bool, pool_start_method: str | None,
           scheduler_cls: str | None) -> None:
    """Start a worker: ``celeriac -A proj worker -l info -c 2 -Q high,low``."""
    if not obj.app_spec:
        # Without the app the worker knows no task: everything it took would be dead-lettered.
        raise click.UsageError("the worker needs your app: celeriac -A proj worker (or set CELERIAC_APP)")
    if pool_start_method == "spawn":
        raise click.BadParameter("celeriac forks its pool processes; spawn is not offered (use fork)",
                                 param_hint="--pool-start-method")
    if scheduler_cls:
        from .beat import refuse_scheduler

        refuse_scheduler(scheduler_cls)
    quiet = quiet or obj.quiet
    node = node_name(hostname)
    logfile = os.path.abspath(file_name(logfile, node)) if logfile else None
    pidfile = os.path.abspath(file_name(pidfile, node)) if pidfile else None
    if logfile:
        os.makedirs(os.path.dirname(logfile), exist_ok=True)
    # The app first: its settings (worker_hijack_root_logger, worker_log_format) and the
    # logging signals it connects decide how logging is set up. Loaded before detaching, so a
    # wrong -A is still said on the terminal.
    app = obj.app
    if detach:
        daemonize(logfile)
        quiet = True
    worker_logs.setup(loglevel, fmt=app.conf.worker_log_format, logfile=logfile,
                      hijack=bool(app.conf.worker_hijack_root_logger))
    _explain_accepted(task_events, without_gossip, without_mingle, without_heartbeat, optimization)
    _apply_options(app, include, heartbeat_interval)
    if disable_prefetch:
        prefetch_multiplier = 1
    if time_limit is not None:
        app.conf.task_time_limit = time_limit
    if soft_time_limit is not None:
        app.conf.task_soft_time_limit = soft_time_limit
    selected = _split(queues) or None
    if exclude_queues:
        excluded = set(_split(exclude_queues))
        selected = [q for q in (selected or app.queues()) if q not in excluded]
        if not selected:
            raise click.UsageError("every queue is excluded by -X")
    if purge:
        _purge(app, selected or app.queues())
    if pidfile:
        write_pidfile(pidfile)
    try:
        if beat:
            # The scheduler runs beside the worker, in this (the supervisor's) process, on a broker
            # connection of its own; it stops when the worker announces its shutdown.
            from .. import signals
            from ..beat import Scheduler

            scheduler = Scheduler(app)
            signals.worker_shutdown.connect(lambda **_: scheduler.stop())
            scheduler.start_thread()
        code = Worker(app, hostname=hostname, concurrency=concurrency, queues=selected, pool=pool,
                      prefetch_multiplier=prefetch_multiplier, max_tasks_per_child=max_tasks_per_child,
                      max_memory_per_child=max_memory_per_child, quiet=quiet, autoscale=autoscale).start()
    finally:
        if pidfile and read_pid(pidfile) == os.getpid():
            os.unlink(pidfile)
    raise SystemExit(code)


def _apply_options(app: Any, include: tuple[str, ...], heartbeat_interval: float | None) -> None:
    modules = _split(include)
    for module in modules:
        try:  # a typo is said in one line here, not as a traceback from the worker's start-up
            importlib.import_module(module)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import {module!r}: {exc}", param_hint="--include") from None
    if modules:
        app.conf.include = (*app.conf.include, *modules)
    if heartbeat_interval is not None:
        app.conf.worker_heartbeat_interval = heartbeat_interval


def _purge(app: Any, queues: list[str]) -> None:
    """``--purge``/``--discard``: as Celery, without asking, and said only when something went."""
    count = app.broker.purge(list(queues))
    if count:
        click.echo(f"purge: Erased {count} {'message' if count == 1 else 'messages'} from "
                   f"{', '.join(queues)}.")
