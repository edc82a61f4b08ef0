"""What the overview page shows, gathered from the history (bounded windows of its indexes) and
the broker: tasks finished per minute, queue depths, workers online, recent failures, and the
wait and runtime percentiles per task name."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from .. import states
from ..brokers.base import QueueStats
from ..monitor.history import TaskQuery, Timings
from ..monitor.state import TaskRecord
from .chart import Bucket
from .service import Dashboard

MINUTES = 60          # the chart's window
TIMINGS_WINDOW = 3600.0
RECENT_FAILURES = 10


@dataclass
class Overview:
    buckets: list[Bucket]
    queues: list[QueueStats]
    workers: list[dict[str, Any]]
    failures: list[TaskRecord]
    timings: dict[str, Timings]

    @property
    def online(self) -> int:
        return sum(1 for w in self.workers if w.get("alive"))

    @property
    def finished(self) -> tuple[int, int]:
        return sum(b.succeeded for b in self.buckets), sum(b.failed for b in self.buckets)


def gather(dash: Dashboard, now: float | None = None) -> Overview:
    now = time.time() if now is None else now
    first = (math.floor(now / 60) - (MINUTES - 1)) * 60.0
    counts = dash.history.outcomes(first, 60.0)
    buckets = [Bucket(first + 60 * i, counts.get((first + 60 * i, states.SUCCESS), 0),
                      counts.get((first + 60 * i, states.FAILURE), 0)) for i in range(MINUTES)]
    workers = sorted(dash.app.control.workers(), key=lambda w: (not w["alive"], w["hostname"]))
    failures = dash.history.query(TaskQuery(state=states.FAILURE, limit=RECENT_FAILURES))
    return Overview(buckets, dash.queue_stats(), workers, failures, dash.history.timings(now - TIMINGS_WINDOW))
