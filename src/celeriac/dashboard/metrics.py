"""``/metrics``: Flower's metric names, so existing Grafana boards and alert rules keep working,
plus what Flower never had: queue depth, delayed and dead-letter counts per queue (read from
the broker at scrape time) and a queue-wait histogram per task name.

Counters and histograms count only events that happened after this process started: on start
the history replays the log from where it stopped, and counting that replay would show a burst
of work that happened earlier. Prometheus treats the restart as a counter reset anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..brokers.base import QueueStats

Event = dict[str, Any]


class QueueCollector(Collector):
    """Queue gauges read from the broker when Prometheus scrapes, so they are right even with
    no worker running and cost nothing between scrapes."""

    def __init__(self, stats: Callable[[], list[QueueStats]]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        ready = GaugeMetricFamily("celeriac_queue_messages", "Messages ready in a queue, by priority",
                                  labels=["queue", "priority"])
        delayed = GaugeMetricFamily("celeriac_queue_delayed", "Delayed messages waiting in a queue",
                                    labels=["queue"])
        unacked = GaugeMetricFamily("celeriac_queue_unacked", "Messages leased to workers", labels=["queue"])
        dead = GaugeMetricFamily("celeriac_queue_dead_letters", "Dead letters of a queue", labels=["queue"])
        try:
            stats = self.stats()
        except Exception:  # the broker is away: no queue samples beats a failed scrape
            stats = []
        for s in stats:
            for priority, count in enumerate(s.ready):
                ready.add_metric([s.name, str(priority)], count)
            delayed.add_metric([s.name], s.delayed)
            unacked.add_metric([s.name], s.unacked)
            dead.add_metric([s.name], s.dead)
        return [ready, delayed, unacked, dead]


class GapCollector(Collector):
    """Gaps in what the dashboard read of the event log (the capped log trimmed entries before
    they were read), from the history at scrape time: counted once each, across restarts."""

    def __init__(self, totals: Callable[[], tuple[int, int]]) -> None:
        self.totals = totals

    def collect(self) -> Iterable[Metric]:
        gaps, entries = self.totals()
        yield CounterMetricFamily("celeriac_dashboard_event_gaps", "Times the event log was trimmed past what "
                                  "the dashboard had read, losing events: the history is incomplete", value=gaps)
        yield CounterMetricFamily("celeriac_dashboard_event_entries_missed", "Event log entries (an event or a "
                                  "worker's batch) known to be lost in those gaps; not counted where the "
                                  "broker's ids do not tell (Redis)", value=entries)


class Metrics:
    def __init__(self, queue_stats: Callable[[], list[QueueStats]], since: float | None = None) -> None:
        self.since = time.time() if since is None else since
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("flower_events", "Number of events", ["worker", "type", "task"], registry=r)
        self.runtime = Histogram("flower_task_runtime_seconds", "Task runtime", ["worker", "task"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
                                          1800, float("inf")))
        self.prefetch_time = Gauge("flower_task_prefetch_time_seconds",
                                   "The time the task spent waiting at the worker to be executed",
                                   ["worker", "task"], registry=r)
        self.prefetched = Gauge("flower_worker_prefetched_tasks", "Number of tasks of given type prefetched at a "
                                "worker", ["worker", "task"], registry=r)
        self.online = Gauge("flower_worker_online", "Worker online status", ["worker"], registry=r)
        self.executing = Gauge("flower_worker_number_of_currently_executing_tasks",
                               "Number of tasks currently executing at a worker", ["worker"], registry=r)
        self.queue_wait = Histogram("celeriac_task_queue_wait_seconds",
                                    "Time from sending a task to its start (needs task_send_sent_event)",
                                    ["task"], registry=r,
                                    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, float("inf")))
        r.register(QueueCollector(queue_stats))
        self._received: dict[str, float] = {}  # task id -> received, until it starts
        self._sent: dict[str, float] = {}

    def observe(self, events: list[Event]) -> None:
        for event in events:
            self._one(event)

    def _one(self, event: Event) -> None:
        kind = str(event.get("type", ""))
        worker = str(event.get("hostname") or "")
        stamp = float(event.get("timestamp") or 0.0)
        if kind.startswith("worker-"):
            self.online.labels(worker).set(0 if kind == "worker-offline" else 1)
            if "active" in event:
                self.executing.labels(worker).set(float(event["active"] or 0))
            if stamp >= self.since:
                self.events.labels(worker, kind, "").inc()
            return
        task, task_id = str(event.get("name") or ""), str(event.get("uuid") or "")
        if stamp < self.since:
            return
        self.events.labels(worker, kind, task).inc()
        if kind == "task-sent":
            self._remember(self._sent, task_id, stamp)
        elif kind == "task-received":
            self._remember(self._received, task_id, stamp)
            self.prefetched.labels(worker, task).inc()
        elif kind == "task-started":
            received = self._received.pop(task_id, None)
            if received is not None:
                self.prefetch_time.labels(worker, task).set(max(0.0, stamp - received))
                self.prefetched.labels(worker, task).dec()
            sent = self._sent.pop(task_id, None)
            if sent is not None:
                self.queue_wait.labels(task).observe(max(0.0, stamp - sent))
        elif kind == "task-succeeded" and event.get("runtime") is not None:
            self.runtime.labels(worker, task).observe(float(event["runtime"]))
        if kind in ("task-succeeded", "task-failed", "task-revoked", "task-rejected") and \
                self._received.pop(task_id, None) is not None:
            self.prefetched.labels(worker, task).dec()  # finished (or revoked) without a start event

    @staticmethod
    def _remember(table: dict[str, float], task_id: str, stamp: float) -> None:
        table[task_id] = stamp
        if len(table) > 100_000:  # tasks whose start we never saw must not pile up
            for key in list(table)[:10_000]:
                del table[key]
