"""The worker: ``celeriac -A proj worker``. Start-up checks and the banner live here; the
running parts are :mod:`.supervisor` (main process) and :mod:`.consumer` (pool processes)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from .. import __version__, signals
from ..brokers.base import redact_url
from ..exceptions import BrokerError, ConfigurationError
from .nodenames import DEFAULT_NAME, file_name, node_name
from .pools import POOLS as POOL_CLASSES
from .supervisor import Supervisor

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.worker")

POOLS = tuple(POOL_CLASSES)


class Worker:
    def __init__(self, app: Celery, *, hostname: str | None = None, concurrency: int | None = None,
                 queues: list[str] | None = None, pool: str | None = None,
                 prefetch_multiplier: int | None = None, max_tasks_per_child: int | None = None,
                 max_memory_per_child: int | None = None, quiet: bool = False,
                 autoscale: tuple[int, int] | None = None, async_concurrency: int | None = None) -> None:
        conf = app.conf
        self.app = app
        self.hostname = node_name(hostname)
        self.pool = pool or conf.worker_pool
        if self.pool not in POOLS:
            raise ConfigurationError(f"unknown pool {self.pool!r} (use {', '.join(POOLS)})")
        self.concurrency = 1 if self.pool == "solo" else (concurrency or conf.worker_concurrency or os.cpu_count() or 1)
        # (max, min): the pool starts at min and the autoscaler moves it (worker/autoscale.py).
        self.autoscale = autoscale if self.pool != "solo" else None
        if self.autoscale:
            self.concurrency = self.autoscale[1]
        self.queues = queues or app.queues()
        self.prefetch = prefetch_multiplier if prefetch_multiplier is not None else conf.worker_prefetch_multiplier
        self.max_tasks_per_child = max_tasks_per_child or conf.worker_max_tasks_per_child
        self.max_memory_per_child = max_memory_per_child or conf.worker_max_memory_per_child
        self.quiet = quiet
        # Tasks at once per pool process: many for asyncio's event loops, one otherwise.
        self.width = (async_concurrency or int(conf.worker_async_concurrency)) if self.pool == "asyncio" else 1
        if self.width < 1:
            raise ConfigurationError(f"worker_async_concurrency must be at least 1, not {self.width}")

    def _connect(self) -> list[str]:
        """Reach the broker, retrying at start-up as Celery does; return its warnings."""
        conf = self.app.conf
        attempts = int(conf.broker_connection_max_retries or 0) if conf.broker_connection_retry_on_startup else 0
        for attempt in range(attempts + 1):
            try:
                self.app.broker.now()
                return self.app.broker.check(allow_evicting=bool(conf.broker_allow_evicting_redis))
            except BrokerError as exc:
                if attempt >= attempts:
                    raise
                pause = min(32.0, 2.0 ** min(attempt, 5))
                logger.error("%s Trying again in %g seconds... (%d/%d)", exc, pause, attempt + 1, attempts)
                time.sleep(pause)
        return []

    def banner(self, warnings: list[str]) -> str:
        conf = self.app.conf
        default = "" if conf.broker_url else "  (this project's embedded default: no broker_url configured)"
        lines = [
            f" -------------- {self.hostname} v{__version__}",
            f"- ** ---------- .> app:         {self.app.main or '__main__'}",
            f"- ** ---------- .> transport:   {redact_url(self.app.broker_url)}{default}",
            f"- ** ---------- .> results:     {redact_url(self.app.backend_url)}",
            f"- *** --- * --- .> concurrency: {self._concurrency_text()}",
            f"-- ******* ---- .> prefetch:    {self.prefetch} per process",
            f"--- ***** ----- .> queues:      {', '.join(self.queues)}",
        ]
        for warning in warnings:
            lines.append(f" !! {warning}")
        lines.append("")
        lines.append("[tasks]")
        lines += [f"  . {name}" for name in sorted(self.app.tasks) if not name.startswith("celeriac.")]
        return "\n".join(lines) + "\n"

    def _concurrency_text(self) -> str:
        if self.autoscale:
            return f"{{min={self.autoscale[1]}, max={self.autoscale[0]}}} ({self.pool}, autoscale)"
        if self.width > 1:
            return f"{self.concurrency} ({self.pool}, {self.width} tasks at once each)"
        return f"{self.concurrency} ({self.pool})"

    def _namesakes(self) -> list[str]:
        """Live workers registered under this worker's name (another process, or this one's
        predecessor whose lease has not lapsed yet)."""
        try:
            return [w.incarnation for w in self.app.broker.workers() if w.name == self.hostname and w.alive]
        except BrokerError:
            return []

    def start(self, install_signals: bool = True) -> int:
        return self.prepare().run(install_signals=install_signals)

    def prepare(self) -> Supervisor:
        """Check the broker, print the banner and build the supervisor, ready to run."""
        if signals.celeryd_init.receivers:
            signals.celeryd_init.send(sender=self.hostname, instance=self, conf=self.app.conf, options={
                "hostname": self.hostname, "concurrency": self.concurrency, "pool": self.pool,
                "queues": self.queues, "prefetch_multiplier": self.prefetch})
        self.app.finalize()
        from .. import execution

        execution.worker_pid = os.getpid()  # so WorkerShutdown raised in a task stops this worker
        if signals.worker_init.receivers:
            signals.worker_init.send(sender=self)
        warnings = self._connect()
        if self._namesakes():
            # As Celery does: warn and run. Leases belong to incarnations, so two workers with
            # one name never take each other's tasks; a predecessor that died on this machine
            # has its tasks given back at start (Supervisor._evict_predecessors).
            warnings.append(f"a worker named {self.hostname!r} is registered as running: if it is this "
                            "worker's previous process its tasks are given back now, otherwise both run "
                            "(give each its own name with -n, e.g. -n worker%i@%h)")
        limited = self.app.conf.task_time_limit or self.app.conf.task_soft_time_limit
        if self.pool not in ("prefork", "asyncio") and limited:
            warnings.append(f"the {self.pool} pool cannot enforce time limits; use prefork")
        if not self.quiet:
            sys.stdout.write(self.banner(warnings))
            sys.stdout.flush()
        for warning in warnings:
            logger.warning(warning)
        if signals.celeryd_after_setup.receivers:
            signals.celeryd_after_setup.send(sender=self.hostname, instance=self, conf=self.app.conf)
        supervisor = Supervisor(
            self.app, hostname=self.hostname, queues=self.queues, concurrency=self.concurrency,
            pool=self.pool, prefetch_multiplier=self.prefetch, max_tasks_per_child=self.max_tasks_per_child,
            max_memory_per_child=self.max_memory_per_child,
            shutdown_timeout=float(self.app.conf.worker_shutdown_timeout),
            max_concurrency=self.autoscale[0] if self.autoscale else 0, width=self.width,
        )
        if self.autoscale:
            from .autoscale import Autoscaler

            supervisor.autoscaler = Autoscaler(supervisor, *self.autoscale,
                                               keepalive=float(self.app.conf.worker_autoscale_keepalive))
        return supervisor


def start_worker(app: Celery, **options: Any) -> int:
    return Worker(app, **options).start()


__all__ = ["DEFAULT_NAME", "POOLS", "Worker", "file_name", "node_name", "start_worker"]
