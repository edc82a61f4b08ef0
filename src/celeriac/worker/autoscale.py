"""``--autoscale=max,min``: grow the pool while work waits, shrink it when processes sit idle.

Judged once a second by the supervisor from what it already has: the slots say how many pool
processes run a task. Only when every process is busy does it ask the broker how much is ready
(one ``stats`` call), and grows by that much, up to ``max``. A pool with idle processes shrinks
by one per ``keepalive`` seconds of idleness, down to ``min`` (Celery's autoscaler keeps an idle
process for 30 s as well), so a burst does not make the pool flap.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import click

from ..exceptions import BrokerError

if TYPE_CHECKING:
    from .supervisor import Supervisor

logger = logging.getLogger("celeriac.worker")


def parse(value: str) -> tuple[int, int]:
    """``"10,3"`` -> (10, 3); ``"10"`` -> (10, 0) as in Celery; a clear error otherwise."""
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not max,min (two whole numbers, e.g. 10,3)") from None
    if len(numbers) not in (1, 2) or any(n < 0 for n in numbers):
        raise click.BadParameter(f"{value!r} is not max,min (two whole numbers, e.g. 10,3)")
    high, low = numbers[0], numbers[1] if len(numbers) == 2 else 0
    if high < 1:
        raise click.BadParameter(f"{value!r}: the maximum must be at least 1")
    return max(high, low), max(1, min(high, low))


class Autoscaler:
    def __init__(self, supervisor: Supervisor, maximum: int, minimum: int, keepalive: float = 30.0) -> None:
        self.supervisor = supervisor
        self.maximum = maximum
        self.minimum = minimum
        self.keepalive = keepalive
        self.idle_since: float | None = None

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        sup = self.supervisor
        busy = len(sup.running())
        size = sup.concurrency
        width = sup.pool.width  # tasks at once per process (-P asyncio runs many)
        if busy >= size * width:
            self.idle_since = None
            if size < self.maximum:
                waiting = self._ready()
                if waiting:
                    self._resize(min(self.maximum, size + -(-waiting // width)) - size, busy)
            return
        if busy > (size - 1) * width:  # less than a whole process idle: nothing to give back
            self.idle_since = None
            return
        if size <= self.minimum:
            self.idle_since = None
            return
        if self.idle_since is None:
            self.idle_since = now
        elif now - self.idle_since >= self.keepalive:
            self.idle_since = now
            self._resize(-1, busy)

    def update(self, maximum: int | None, minimum: int | None) -> tuple[int, int]:
        """Remote control's ``autoscale``: new bounds, and the pool moved inside them now. The
        maximum cannot pass the slots the worker set up at start (``--autoscale``'s max, at least 16)."""
        capacity = self.supervisor.slots.count // self.supervisor.pool.width
        high = self.maximum if maximum is None else int(maximum)
        low = self.minimum if minimum is None else int(minimum)
        if high < 1 or low < 0:
            raise ValueError(f"autoscale {high},{low}: the maximum must be at least 1 and the minimum not negative")
        high = min(high, capacity)
        self.maximum, self.minimum = high, max(1, min(low, high))
        size = self.supervisor.concurrency
        if size > self.maximum:
            self._resize(self.maximum - size, len(self.supervisor.running()))
        elif size < self.minimum:
            self._resize(self.minimum - size, len(self.supervisor.running()))
        return self.maximum, self.minimum

    def _ready(self) -> int:
        try:
            return sum(s.ready_total for s in self.supervisor.broker.stats(self.supervisor.queues))
        except BrokerError:
            return 0

    def _resize(self, delta: int, busy: int) -> None:
        if delta:
            size = self.supervisor.resize(delta)
            logger.info("autoscale: %d busy, pool now %d process(es) (min %d, max %d)",
                        busy, size, self.minimum, self.maximum)
