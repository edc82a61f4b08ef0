"""``expires`` is judged by the broker's clock, not the worker host's (issue 10, finding 15).

The broker here is the memory broker with its clock set off from this host's, which is what a
worker on a host whose clock drifted sees; everything else is the real worker, in-process.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from celeriac import Celery, states
from celeriac.brokers.clock import BrokerClock
from celeriac.brokers.memory import MemoryBroker
from celeriac.testing import start_worker


class SkewedBroker(MemoryBroker):
    skew = 0.0  # the broker's clock minus this host's

    def now(self) -> float:
        return time.time() + self.skew


class SkewedApp(Celery):
    def new_broker(self) -> Any:
        broker = SkewedBroker(self.broker_url)
        return broker


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Any:
    app = SkewedApp("skew", broker=f"memory://skew-{request.node.name}", set_as_current=False)
    app.conf.broker_lease_seconds = 6.0

    @app.task(name="skew.add")
    def add(x: int, y: int) -> int:
        return x + y

    yield app
    app.close()


def _at(broker_time: float) -> datetime:
    return datetime.fromtimestamp(broker_time, UTC)


def test_a_worker_whose_clock_runs_ahead_still_runs_a_task_with_time_left(app):
    SkewedBroker.skew = -120.0  # this host is two minutes ahead of the broker
    try:
        add = app.tasks["skew.add"]
        with start_worker(app):
            live = add.apply_async((1, 2), expires=_at(app.broker.now() + 60))
            assert live.get(timeout=10) == 3
    finally:
        SkewedBroker.skew = 0.0


def test_a_worker_whose_clock_runs_behind_discards_a_task_already_expired(app):
    SkewedBroker.skew = 120.0  # this host is two minutes behind the broker
    try:
        add = app.tasks["skew.add"]
        with start_worker(app):
            gone = add.apply_async((1, 2), expires=_at(app.broker.now() - 30))
            relative = add.apply_async((2, 2), expires=60)  # a minute from now, by the broker's clock
            assert relative.get(timeout=10) == 4
            assert gone.state == states.REVOKED
    finally:
        SkewedBroker.skew = 0.0


def test_the_clock_asks_the_broker_once_per_refresh():
    class Counting(MemoryBroker):
        calls = 0

        def now(self) -> float:
            Counting.calls += 1
            return time.time() + 30

    broker = Counting("memory://clock-count")
    try:
        clock = BrokerClock(broker, refresh=60)
        readings = [clock.now() for _ in range(1000)]
        assert Counting.calls == 1
        assert all(abs(r - time.time() - 30) < 0.5 for r in readings)
    finally:
        broker.close()
