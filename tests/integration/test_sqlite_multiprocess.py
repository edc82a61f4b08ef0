"""The SQLite broker shared by real processes: contention, SIGKILL, cross-process wake-ups.

Children are started with ``spawn`` so each builds its broker from the URL, as a worker does.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

import pytest

from celeriac import brokers
from celeriac.brokers.base import Broker

Q = "mp"
ctx: SpawnContext = multiprocessing.get_context("spawn")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mp.db'}"


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    b = brokers.from_url(url, lease_seconds=0.5)
    yield b
    b.close()


def _stop(procs: list[Any]) -> None:
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join(10)


# -- children ---------------------------------------------------------------------------------

def _produce(url: str, first: int, n: int, start: Any) -> None:
    broker = brokers.from_url(url)
    try:
        start.wait(60)
        for i in range(first, first + n):
            broker.enqueue(Q, b"%05d" % i, priority=i % 3)
    finally:
        broker.close()


def _consume(url: str, name: str, start: Any, producers_done: Any, out: Any) -> None:
    broker = brokers.from_url(url)
    seen: list[bytes] = []
    try:
        broker.stats([Q])  # connect before the race starts
        start.wait(60)
        while True:
            done = producers_done.is_set()  # read before fetching: an empty fetch after it means drained
            got = broker.fetch([Q], f"{name}/1", 10, 0.05)
            if got:
                seen += [d.body for d in got]
                broker.ack(got)
            elif done:
                break
    finally:
        broker.close()
        out.put((name, seen))


def _hold_until_killed(url: str, ready: Any, out: Any) -> None:
    broker = brokers.from_url(url, lease_seconds=0.5)
    broker.heartbeat("doomed#1", b"", [Q], first=True)
    got = broker.fetch([Q], "doomed#1/1", 20, 5.0)
    # Reported running before the test may kill it: only started deliveries are charged a
    # redelivery, and a kill before this beat would rightly charge none.
    broker.heartbeat("doomed#1", b"", [Q], running=got)
    out.put([d.body for d in got])
    ready.set()
    while True:  # a live worker running them all: heartbeats until SIGKILL stops it mid-sleep
        broker.heartbeat("doomed#1", b"", [Q], running=got)
        time.sleep(0.1)


def _churn_until_killed(url: str, ready: Any) -> None:
    broker = brokers.from_url(url)
    i = 0
    while True:
        broker.enqueue_many([(Q, b"churn%d" % (i * 10 + j), 0, 0.0, "") for j in range(10)])
        broker.ack(broker.fetch([Q], "churner/1", 7, 0))
        broker.log_append("events", b"e", 50)
        i += 1
        if i == 5:
            ready.set()


def _wake_on_fetch(url: str, ready: Any, out: Any) -> None:
    broker = brokers.from_url(url)
    try:
        broker.stats([Q])
        for _ in range(3):
            ready.set()
            got = broker.fetch([Q], "sleeper/1", 1, 10.0)
            out.put(time.monotonic())  # CLOCK_MONOTONIC is system-wide on Linux
            broker.ack(got)
    finally:
        broker.close()


# -- tests ------------------------------------------------------------------------------------

def test_four_consumers_and_two_producers_deliver_2000_messages_exactly_once(url: str, broker: Broker) -> None:
    """Four consumer processes racing two producer processes on one file: each of 2,000
    messages is delivered exactly once."""
    start, producers_done, out = ctx.Barrier(7), ctx.Event(), ctx.Queue()
    producers = [ctx.Process(target=_produce, args=(url, i * 1000, 1000, start)) for i in range(2)]
    consumers = [ctx.Process(target=_consume, args=(url, f"c{i}", start, producers_done, out))
                 for i in range(4)]
    try:
        for p in producers + consumers:
            p.start()
        start.wait(60)
        for p in producers:
            p.join(60)
        assert [p.exitcode for p in producers] == [0, 0]
        producers_done.set()
        parts = dict(out.get(timeout=60) for _ in consumers)
    finally:
        _stop(producers + consumers)
        out.close()
        out.join_thread()
    delivered = [body for part in parts.values() for body in part]
    assert len(delivered) == 2000
    assert sorted(delivered) == [b"%05d" % i for i in range(2000)]
    assert sum(1 for part in parts.values() if part) >= 2, "no contention happened"
    stats = broker.stats([Q])[0]
    assert (stats.ready_total, stats.unacked) == (0, 0)


def test_messages_of_a_sigkilled_consumer_come_back_after_its_lease(url: str, broker: Broker) -> None:
    """Nothing is lost: a consumer SIGKILLed while holding leases gets its messages recovered
    by another process once its lease expires, each counted as one redelivery."""
    broker.enqueue_many([(Q, b"%02d" % i, 0, 0.0, "") for i in range(30)])
    ready, out = ctx.Event(), ctx.Queue()
    holder = ctx.Process(target=_hold_until_killed, args=(url, ready, out))
    try:
        holder.start()
        held = out.get(timeout=30)
        assert ready.wait(30) and len(held) == 20
        # While it heartbeats, its leases stand.
        broker.heartbeat("survivor#2", b"", [Q], first=True)
        assert broker.recover("survivor#2") == []
        rest = broker.fetch([Q], "survivor#2/1", 30, 0)
        assert len(rest) == 10
        broker.ack(rest)
        assert sorted(d.body for _, d in broker.held("doomed#1", [Q])) == sorted(held)
        os.kill(holder.pid, signal.SIGKILL)  # type: ignore[arg-type]
        holder.join(10)
    finally:
        _stop([holder])
        out.close()
        out.join_thread()
    deadline = time.monotonic() + 5
    back: list[Any] = []
    while len(back) < 20 and time.monotonic() < deadline:
        broker.heartbeat("survivor#2", b"", [Q])  # the recovering worker lives (stall rule)
        assert broker.recover("survivor#2") == []  # within the cap: back to the queue, not dead-lettered
        back += broker.fetch([Q], "survivor#2/1", 30, 0.1)
    assert sorted(d.body for d in back) == sorted(held)
    assert {d.redeliveries for d in back} == {1}
    broker.ack(back)
    assert broker.stats([Q])[0].unacked == 0


def test_a_process_killed_mid_write_leaves_the_database_consistent(url: str, broker: Broker,
                                                                  tmp_path: Path) -> None:
    """SIGKILL in the middle of transactions loses no committed state and leaves no lock."""
    ready = ctx.Event()
    churner = ctx.Process(target=_churn_until_killed, args=(url, ready))
    try:
        churner.start()
        assert ready.wait(30)
        time.sleep(0.2)
        os.kill(churner.pid, signal.SIGKILL)  # type: ignore[arg-type]
        churner.join(10)
    finally:
        _stop([churner])
    start = time.monotonic()
    broker.enqueue(Q, b"after")  # the dead process's write lock is gone
    assert time.monotonic() - start < 1.0
    check = sqlite3.connect(tmp_path / "mp.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()
    stats = broker.stats([Q])[0]
    assert stats.ready_total >= 1


def test_a_fetch_blocked_in_another_process_wakes_within_milliseconds(url: str, broker: Broker) -> None:
    """The doorbell wakes a fetch blocked in another process promptly (typically well under
    a millisecond; bounded at 100 ms here for a loaded machine)."""
    ready, out = ctx.Event(), ctx.Queue()
    sleeper = ctx.Process(target=_wake_on_fetch, args=(url, ready, out))
    latencies = []
    try:
        sleeper.start()
        for i in range(3):
            assert ready.wait(30)
            ready.clear()
            time.sleep(0.2)  # let it block
            sent = time.monotonic()
            broker.enqueue(Q, b"ring%d" % i)
            latencies.append(out.get(timeout=10) - sent)
        sleeper.join(10)
    finally:
        _stop([sleeper])
        out.close()
        out.join_thread()
    assert sleeper.exitcode == 0
    assert min(latencies) < 0.1, latencies
