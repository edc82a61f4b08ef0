"""What the overview page shows, gathered from the history (bounded windows of its indexes) and
the broker: tasks finished per minute, queue depths, workers online, recent failures, and the
wait and runtime percentiles per task name."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import states
from ..brokers.base import QueueStats
from ..monitor.history import TaskQuery, Timings
from ..monitor.reader import Gap
from ..monitor.state import TaskRecord
from .chart import Bucket
from .service import Dashboard

MINUTES = 60          # the chart's window
TIMINGS_WINDOW = 3600.0
TIMINGS_SAMPLE = 20_000  # the newest finished tasks the percentiles are taken from
RECENT_FAILURES = 10
SHOWN_GAPS = 5


@dataclass
class Overview:
    buckets: list[Bucket]
    queues: list[QueueStats]
    workers: list[dict[str, Any]]
    failures: list[TaskRecord]
    timings: dict[str, Timings]
    gaps: list[Gap] = field(default_factory=list)  # newest first: windows the history misses
    gap_count: int = 0

    @property
    def online(self) -> int:
        return sum(1 for w in self.workers if w.get("alive"))

    @property
    def finished(self) -> tuple[int, int]:
        return sum(b.succeeded for b in self.buckets), sum(b.failed for b in self.buckets)


class Gatherer:
    """Gathers the overview. The history's part (a window of the covering index: tens of
    milliseconds at 100,000 tasks an hour) is read once per change of the history and minute,
    however many open overviews ask after each change."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, float], list[Bucket], list[TaskRecord], dict[str, Timings]] | None = None

    def __call__(self, now: float | None = None) -> Overview:
        now = time.time() if now is None else now
        buckets, failures, timings = self._history(now)
        workers = sorted(self.dash.app.control.workers(), key=lambda w: (not w["alive"], w["hostname"]))
        history = self.dash.history
        return Overview(buckets, self.dash.queue_stats(), workers, failures, timings,
                        history.gaps(SHOWN_GAPS), history.gap_totals()[0])

    def _history(self, now: float) -> tuple[list[Bucket], list[TaskRecord], dict[str, Timings]]:
        with self._lock:
            key = (self.dash.indexer.changes, now // 60)
            cached = self._cached
            if cached is not None and cached[0] == key:
                return cached[1], cached[2], cached[3]
            history = self.dash.history
            first = (math.floor(now / 60) - (MINUTES - 1)) * 60.0
            counts = history.outcomes(first, 60.0)
            buckets = [Bucket(first + 60 * i, counts.get((first + 60 * i, states.SUCCESS), 0),
                              counts.get((first + 60 * i, states.FAILURE), 0)) for i in range(MINUTES)]
            failures = history.query(TaskQuery(state=states.FAILURE, limit=RECENT_FAILURES))
            timings = history.timings(now - TIMINGS_WINDOW, limit=TIMINGS_SAMPLE)
            self._cached = (key, buckets, failures, timings)
            return buckets, failures, timings
