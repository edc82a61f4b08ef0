"""The coordination contract's chord counter, on every engine (memory, SQLite, Redis, Sentinel)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from celeriac import backends, message
from celeriac.backends.base import ResultBackend
from celeriac.brokers.base import Broker

MakeBroker = Callable[..., Broker]


def drain(broker: Broker, queue: str) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(100):
        got = broker.fetch([queue], "w/1", 100, 0)
        if not got:
            break
        out += [d.body for d in got]
        broker.ack(got)
    return out


def test_the_member_completing_the_chord_enqueues_the_join_once(broker: Broker) -> None:
    """Nothing is enqueued until the last distinct member; that call returns True, once."""
    broker.chord_start("c1", 3, b"join-c1", queue="q", priority=4, ttl=60)
    assert broker.chord_part("c1", "a", queue="q", priority=4) is False
    assert broker.chord_part("c1", "b", queue="q", priority=4) is False
    assert drain(broker, "q") == []
    assert broker.chord_part("c1", "c", queue="q", priority=4) is True
    got = broker.fetch(["q"], "w/1", 10, 0)
    assert [(d.body, d.priority) for d in got] == [(b"join-c1", 4)]
    broker.ack(got)
    assert broker.chord_part("c1", "c", queue="q", priority=4) is False
    assert drain(broker, "q") == []


def test_a_member_counted_twice_counts_once(broker: Broker) -> None:
    """A header task run again (its worker was killed, its message redelivered) is one member:
    the chord does not complete early, and completes exactly once."""
    broker.chord_start("c2", 2, b"join-c2", queue="q", ttl=60)
    assert broker.chord_part("c2", "a", queue="q") is False
    assert broker.chord_part("c2", "a", queue="q") is False
    assert drain(broker, "q") == []
    assert broker.chord_part("c2", "b", queue="q") is True
    assert broker.chord_part("c2", "a", queue="q") is False
    assert broker.chord_part("c2", "b", queue="q") is False
    assert drain(broker, "q") == [b"join-c2"]


def test_unknown_and_expired_chords_count_nothing(broker: Broker) -> None:
    assert broker.chord_part("never-started", "a", queue="q") is False
    broker.chord_start("c3", 1, b"join-c3", queue="q", ttl=0.3)
    time.sleep(0.5)
    assert broker.chord_part("c3", "a", queue="q") is False
    assert drain(broker, "q") == []


def test_racing_members_fire_the_join_exactly_once(make_broker: MakeBroker) -> None:
    """Many connections counting every member, several times each, at once: one True, one join."""
    size, racers = 12, 6
    first = make_broker()
    first.chord_start("c4", size, b"join-c4", queue="q", ttl=60)
    others = [make_broker() for _ in range(racers)]
    fired: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(racers)

    def run(i: int) -> None:
        barrier.wait()
        for member in range(size):
            result = others[i].chord_part("c4", f"m{(member + i) % size}", queue="q")
            with lock:
                fired.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fired.count(True) == 1
    assert len(fired) == size * racers
    assert drain(first, "q") == [b"join-c4"]


@pytest.mark.parametrize("same_store", [False, True], ids=["own-results-store", "results-in-broker-store"])
def test_records_are_stored_with_the_count(broker: Broker, broker_url: str, url_options: dict[str, Any],
                                           backend: ResultBackend, same_store: bool) -> None:
    """chord_part stores the member's result record: a join that fires finds every result."""
    store = backends.from_url(broker_url, **url_options) if same_store else backend
    try:
        broker.chord_start("c5", 2, b"join-c5", queue="q", ttl=60)
        for member in ("a", "b"):
            meta = {"task_id": member, "status": "SUCCESS", "result": member.upper()}
            broker.chord_part("c5", member, queue="q", records=[(member, message.dumps(meta), True)],
                              backend=store)
        assert [m["result"] for m in store.get_many(["a", "b"])] == ["A", "B"]
        assert drain(broker, "q") == [b"join-c5"]
    finally:
        if same_store:
            store.close()


def test_a_failed_member_fires_the_join_at_once_and_closes_the_chord(broker: Broker) -> None:
    """As Celery, the first failed header task fails the chord without waiting for the rest; the
    join goes out once: later members, failed or not, count nothing and fire nothing."""
    broker.chord_start("c6", 4, b"join-c6", queue="q", priority=2, ttl=60)
    assert broker.chord_part("c6", "a", queue="q", priority=2) is False
    assert broker.chord_part("c6", "b", queue="q", priority=2, failed=True) is True
    got = broker.fetch(["q"], "w/1", 10, 0)
    assert [(d.body, d.priority) for d in got] == [(b"join-c6", 2)]
    broker.ack(got)
    assert broker.chord_part("c6", "c", queue="q", priority=2, failed=True) is False
    assert broker.chord_part("c6", "b", queue="q", priority=2, failed=True) is False
    assert broker.chord_part("c6", "d", queue="q", priority=2) is False
    assert drain(broker, "q") == []


def test_a_failed_member_after_completion_fires_nothing(broker: Broker) -> None:
    """A re-run that fails after the chord completed (its first run counted) changes nothing."""
    broker.chord_start("c7", 2, b"join-c7", queue="q", ttl=60)
    assert broker.chord_part("c7", "a", queue="q") is False
    assert broker.chord_part("c7", "b", queue="q") is True
    assert broker.chord_part("c7", "a", queue="q", failed=True) is False
    assert drain(broker, "q") == [b"join-c7"]


def test_racing_failures_fire_the_join_exactly_once(make_broker: MakeBroker) -> None:
    """Every member failing at once on several connections: one True, one join message."""
    size, racers = 8, 4
    first = make_broker()
    first.chord_start("c8", size, b"join-c8", queue="q", ttl=60)
    others = [make_broker() for _ in range(racers)]
    fired: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(racers)

    def run(i: int) -> None:
        barrier.wait()
        for member in range(size):
            result = others[i].chord_part("c8", f"m{(member + i) % size}", queue="q", failed=member % 2 == 0)
            with lock:
                fired.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fired.count(True) == 1
    assert drain(first, "q") == [b"join-c8"]


def test_a_grown_chord_waits_for_the_added_member_and_lists_it(broker: Broker) -> None:
    """Task.add_to_chord: the size grows with each new member id, once per id, and the added
    members stay readable after the join went out."""
    broker.chord_start("g1", 2, b"join-g1", queue="q", ttl=60)
    assert broker.chord_part("g1", "a", queue="q") is False
    assert broker.chord_grow("g1", "x", queue="q") is True
    assert broker.chord_grow("g1", "x", queue="q") is True  # the adding task re-run: no second slot
    assert broker.chord_grow("g1", "y", queue="q") is True
    assert broker.chord_part("g1", "b", queue="q") is False
    assert broker.chord_part("g1", "x", queue="q") is False
    assert drain(broker, "q") == []
    assert broker.chord_part("g1", "y", queue="q") is True
    assert drain(broker, "q") == [b"join-g1"]
    assert broker.chord_added("g1", queue="q") == ["x", "y"]
    assert broker.chord_grow("g1", "z", queue="q") is False  # fired: too late to join
    assert broker.chord_grow("never-started", "z", queue="q") is False
    assert broker.chord_added("never-started", queue="q") == []
