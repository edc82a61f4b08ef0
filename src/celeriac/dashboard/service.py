"""What the dashboard process holds: the celeriac app, the task history and its indexer, the
metrics, and Flower's cache of what workers answered to inspect commands."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import message, states
from ..brokers.base import QueueStats
from ..monitor.history import History
from ..monitor.indexer import Indexer
from ..monitor.state import TaskRecord
from . import alerts
from .csrf import Csrf
from .metrics import GapCollector, Metrics
from .settings import Settings, default_db
from .shapes import record_from_meta

if TYPE_CHECKING:
    from ..app import Celery

#: What Flower asks every worker for (``/api/workers``); with ``workername`` also the rest.
INSPECT_ALL = ("stats", "active_queues", "registered", "conf")
INSPECT_ONE = ("scheduled", "active", "reserved", "revoked")
REFRESH_AFTER = 10.0  # seconds a worker cache stays fresh enough for /api/workers


class Dashboard:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.history = History(settings.db or default_db(app.broker_url), max_tasks=settings.max_tasks,
                               max_age=settings.max_age)
        self.indexer = Indexer(app.new_broker(), self.history, repair=self.finished_in_store)
        self.csrf = Csrf(settings.url_prefix or "/")
        self.metrics = Metrics(self.queue_stats)
        self.indexer.listeners.append(self.metrics.observe)
        self.metrics.registry.register(GapCollector(self.history.gap_totals))
        self.alerts = alerts.from_app(app, self.indexer.tasks.get, self.queue_stats)
        if self.alerts is not None:
            self.indexer.listeners.append(self.alerts.observe)
        self.worker_cache: dict[str, dict[str, Any]] = {}
        self._cache_lock = threading.Lock()
        self._refreshed = 0.0

    def start(self) -> None:
        self.indexer.start()
        if self.alerts is not None:
            self.alerts.start()

    def stop(self) -> None:
        self.indexer.stop()
        if self.alerts is not None:
            self.alerts.stop()
            self.alerts.broker.close()
        self.indexer.broker.close()
        self.history.close()

    # -- tasks ----------------------------------------------------------------------------------
    def task(self, task_id: str) -> TaskRecord | None:
        """The task from the history, else from the result store (its events may have been
        trimmed from the log, or turned off); None when neither knows it. A task the history
        shows unfinished is checked against the store, which is written before the event that
        says it finished (and is there even when that event was lost)."""
        record = self.history.get(task_id)
        if record is not None and record.state in states.READY_STATES:
            return record
        data = self.app.backend.read(task_id)
        if data is None:
            return record
        meta = message.loads(data)
        if record is not None and str(meta.get("status")) not in states.READY_STATES:
            return record
        name = meta.get("name") or (record.name if record else None)
        return record_from_meta(task_id, meta, self.app.redactor, into=record, task=self.app.tasks.get(name or ""))

    def finished_in_store(self, records: list[TaskRecord]) -> list[TaskRecord]:
        """Of these tasks the history shows unfinished, those the result store holds finished,
        brought up to that state (after events were lost, their final events may be among them)."""
        fixed = []
        for start in range(0, len(records), 500):
            chunk = records[start:start + 500]
            for record, data in zip(chunk, self.app.backend.read_many([r.uuid for r in chunk]), strict=True):
                if data is None:
                    continue
                meta = message.loads(data)
                if str(meta.get("status")) in states.READY_STATES:
                    name = meta.get("name") or record.name
                    fixed.append(record_from_meta(record.uuid, meta, self.app.redactor, into=record,
                                                  task=self.app.tasks.get(name or "")))
        return fixed

    # -- queues ---------------------------------------------------------------------------------
    def queue_names(self) -> list[str]:
        """Queues a worker consumes or consumed, the configured ones and any that held a message."""
        consumed = {q for w in self.app.control.workers() for q in w.get("queues", [])}
        return sorted(consumed | set(self.app.queues()) | set(self.app.broker.queues()))

    def queue_stats(self) -> list[QueueStats]:
        return self.app.control.queues(self.queue_names())

    # -- workers (Flower's inspect cache) -------------------------------------------------------
    def refresh_workers(self, workername: str | None = None) -> None:
        methods = INSPECT_ALL + (INSPECT_ONE if workername else ())
        inspect = self.app.control.inspect(destination=[workername] if workername else None,
                                           timeout=self.settings.inspect_timeout)
        # Concurrently: each command waits for every live worker's reply, up to the timeout.
        with ThreadPoolExecutor(len(methods)) as pool:
            replies = dict(zip(methods, pool.map(lambda m: getattr(inspect, m)() or {}, methods), strict=True))
        now = time.time()
        with self._cache_lock:
            for method, by_worker in replies.items():
                for worker, reply in by_worker.items():
                    if method == "scheduled" or worker == "broker":
                        continue
                    entry = self.worker_cache.setdefault(worker, {})
                    entry[method] = reply
                    entry["timestamp"] = now
            if workername and workername in self.worker_cache:
                # Delayed tasks wait in the broker, never in a worker.
                self.worker_cache[workername]["scheduled"] = []
            self._purge_offline(now)
            self._refreshed = time.monotonic()

    def _purge_offline(self, now: float) -> None:
        limit = self.settings.purge_offline_workers
        if limit is None:
            return
        registry = {w.name: w for w in self.app.broker.workers()}
        for name in list(self.worker_cache):
            record = registry.get(name)
            last = record.last_seen if record is not None else self.worker_cache[name].get("timestamp", 0.0)
            if (record is None or not record.alive) and now - last > limit:
                del self.worker_cache[name]

    def workers(self, refresh: bool = False, workername: str | None = None) -> dict[str, dict[str, Any]]:
        if refresh or workername or not self.worker_cache or time.monotonic() - self._refreshed > REFRESH_AFTER:
            self.refresh_workers(workername)
        with self._cache_lock:
            return {name: dict(info) for name, info in self.worker_cache.items()}

    def workers_alive(self) -> dict[str, bool]:
        return {w.name: w.alive for w in self.app.broker.workers()}
