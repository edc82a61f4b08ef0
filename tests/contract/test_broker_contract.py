"""The broker contract (``celeriac.brokers.base``), run against memory, SQLite and Redis.

Every test names the promise it guards. Waits are bounded: a test that would hang fails by its
own deadline instead. Short leases (0.3-0.5 s) stand in for the default 6 s.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from celeriac import brokers
from celeriac.brokers.base import Broker, Delivery
from celeriac.brokers.memory import MemoryBroker
from celeriac.brokers.sqlite import SQLiteBroker
from celeriac.engines.sqlite.db import sqlite_path
from celeriac.engines.sqlite.wake import Doorbell
from celeriac.exceptions import BrokerFull, ConfigurationError

Q = "contract"
MakeBroker = Callable[..., Broker]


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


def drain(broker: Broker, queues: list[str], consumer: str = "w/1", limit: int = 1000) -> list[Delivery]:
    """Every ready message, fetched without blocking."""
    out: list[Delivery] = []
    while len(out) < limit and (got := broker.fetch(queues, consumer, 100, 0)):
        out += got
    return out


def eventually(check: Callable[[], object], timeout: float = 2.0, every: float = 0.02) -> object:
    """Poll ``check`` until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(every)
    return result


def in_threads(n: int, target: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


# -- producing and consuming ---------------------------------------------------------------

def test_enqueued_message_is_fetched_once_with_its_fields(broker: Broker) -> None:
    """A message comes back with its queue, priority and body, and is not handed out twice."""
    broker.enqueue(Q, b"hello", priority=3)
    [d] = broker.fetch([Q], "w/1", 10, 0)
    assert (d.queue, d.priority, d.body, d.redeliveries) == (Q, 3, b"hello", 0)
    assert broker.fetch([Q], "w/2", 10, 0) == []
    broker.ack([d])
    assert broker.stats([Q])[0].unacked == 0


def test_higher_priority_first_then_fifo_within_a_priority(broker: Broker) -> None:
    """Priorities are real (9 before 0) and messages of one priority keep their order."""
    sent = [(b"a0", 0), (b"b5", 5), (b"c9", 9), (b"d5", 5), (b"e0", 0), (b"f9", 9), (b"g0", 0)]
    for body, prio in sent:
        broker.enqueue(Q, body, priority=prio)
    assert bodies(broker.fetch([Q], "w/1", 2, 0)) == [b"c9", b"f9"]
    # One at a time too: priority holds beyond any prefetch window.
    assert [broker.fetch([Q], "w/1", 1, 0)[0].body for _ in range(5)] == [b"b5", b"d5", b"a0", b"e0", b"g0"]


def test_fifo_holds_over_many_messages(broker: Broker) -> None:
    """Messages of one priority come out in the order they went in."""
    for i in range(60):
        broker.enqueue(Q, b"%03d" % i)
    assert bodies(drain(broker, [Q])) == [b"%03d" % i for i in range(60)]


def test_out_of_range_priorities_are_clamped(broker: Broker) -> None:
    """Priorities outside 0-9 count as the nearest level."""
    broker.enqueue(Q, b"low", priority=-4)
    broker.enqueue(Q, b"high", priority=42)
    got = broker.fetch([Q], "w/1", 2, 0)
    assert [(d.body, d.priority) for d in got] == [(b"high", 9), (b"low", 0)]


def test_queues_are_served_in_the_order_given(broker: Broker) -> None:
    """fetch drains the first queue before the next, whatever the priorities."""
    broker.enqueue("first", b"f", priority=0)
    broker.enqueue("second", b"s", priority=9)
    assert bodies(broker.fetch(["first", "second"], "w/1", 1, 0)) == [b"f"]
    assert bodies(broker.fetch(["first", "second"], "w/1", 1, 0)) == [b"s"]
    broker.enqueue("first", b"f2")
    broker.enqueue("second", b"s2")
    assert bodies(broker.fetch(["second", "first"], "w/1", 2, 0)) == [b"s2", b"f2"]


def test_fetch_returns_at_most_count(broker: Broker) -> None:
    """count caps one fetch; the rest stay ready."""
    for i in range(5):
        broker.enqueue(Q, bytes([i]))
    assert len(broker.fetch([Q], "w/1", 2, 0)) == 2
    assert len(broker.fetch([Q], "w/1", 10, 0)) == 3


def test_enqueue_many_stores_each_item(broker: Broker) -> None:
    """enqueue_many is enqueue for each (queue, body, priority, delay, key), in order."""
    broker.enqueue_many([(Q, b"a", 0, 0.0, ""), ("other", b"b", 0, 0.0, ""), (Q, b"c", 7, 0.0, ""),
                         (Q, b"later", 0, 30.0, "k1")])
    assert bodies(broker.fetch([Q, "other"], "w/1", 10, 0)) == [b"c", b"a", b"b"]
    assert [s.key for s in broker.scheduled([Q])] == ["k1"]


def test_fetch_with_zero_timeout_never_blocks(broker: Broker) -> None:
    """timeout=0 on an empty queue returns at once."""
    start = time.monotonic()
    assert broker.fetch([Q], "w/1", 1, 0) == []
    assert time.monotonic() - start < 0.2


def test_blocking_fetch_gives_up_after_its_timeout(broker: Broker) -> None:
    """fetch blocks up to timeout, then returns an empty list."""
    start = time.monotonic()
    assert broker.fetch([Q], "w/1", 1, 0.4) == []
    assert 0.35 <= time.monotonic() - start < 2.0


def test_blocking_fetch_returns_promptly_when_a_message_arrives(make_broker: MakeBroker) -> None:
    """A fetch blocked on an empty queue wakes within a fraction of a second of an enqueue made
    through another connection."""
    consumer, producer = make_broker(), make_broker()
    got: list[tuple[list[Delivery], float]] = []
    thread = threading.Thread(target=lambda: got.append((consumer.fetch([Q], "w/1", 1, 5.0), time.monotonic())))
    thread.start()
    time.sleep(0.3)  # let it block
    sent = time.monotonic()
    producer.enqueue(Q, b"wake")
    thread.join(6)
    [(deliveries, woke)] = got
    assert bodies(deliveries) == [b"wake"]
    assert woke - sent < 0.5


def test_no_message_is_leased_to_two_consumers_under_concurrency(make_broker: MakeBroker) -> None:
    """Four threads, each with its own connection, fetching at once: every message exactly once."""
    make_broker().enqueue_many([(Q, b"%04d" % i, i % 10, 0.0, "") for i in range(300)])
    consumers = [make_broker() for _ in range(4)]

    def consume(i: int) -> list[bytes]:
        mine: list[bytes] = []
        while got := consumers[i].fetch([Q], f"w{i}/1", 3, 0):
            mine += bodies(got)
            consumers[i].ack(got)
        return mine

    fetched = [body for part in in_threads(4, consume) for body in part]  # type: ignore[union-attr]
    assert sorted(fetched) == [b"%04d" % i for i in range(300)]


def _consume_in_process(url: str, index: int, barrier: multiprocessing.synchronize.Barrier,
                        out: multiprocessing.Queue[list[bytes]]) -> None:
    broker = brokers.from_url(url)
    mine: list[bytes] = []
    try:
        barrier.wait(30)
        while got := broker.fetch([Q], f"proc{index}/1", 2, 0):
            mine += bodies(got)
            broker.ack(got)
    finally:
        broker.close()
        out.put(mine)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])  # a memory broker lives in one process
def test_no_message_is_leased_twice_across_processes(broker: Broker, broker_url: str) -> None:
    """Four processes fetching from one store at once: every message exactly once."""
    broker.enqueue_many([(Q, b"%04d" % i, 0, 0.0, "") for i in range(200)])
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_consume_in_process, args=(broker_url, i, barrier, out)) for i in range(4)]
    for p in procs:
        p.start()
    try:
        parts = [out.get(timeout=30) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
        out.close()
        out.join_thread()
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(b for part in parts for b in part) == [b"%04d" % i for i in range(200)]


def test_a_repeated_ack_never_removes_another_message(broker: Broker) -> None:
    """Tags are never reused: acking a finished delivery again leaves newer messages alone."""
    broker.enqueue(Q, b"old")
    [old] = broker.fetch([Q], "w/1", 1, 0)
    broker.ack([old])
    broker.enqueue(Q, b"new")
    [new] = broker.fetch([Q], "w/1", 1, 0)
    assert new.tag != old.tag
    broker.ack([old])
    assert broker.stats([Q])[0].unacked == 1


def test_requeue_makes_the_message_ready_again_without_a_charge(broker: Broker) -> None:
    """requeue gives a delivery back at once; it is not counted as a redelivery."""
    broker.enqueue(Q, b"again")
    [d] = broker.fetch([Q], "w/1", 1, 0)
    broker.requeue([d])
    assert broker.stats([Q])[0].unacked == 0
    [d2] = broker.fetch([Q], "w/2", 1, 0)
    assert (d2.body, d2.redeliveries) == (b"again", 0)


def test_requeue_with_delay_waits_in_the_broker(broker: Broker) -> None:
    """requeue(delay=...) makes the message delayed: invisible until due, then promoted."""
    broker.enqueue(Q, b"later", priority=4)
    [d] = broker.fetch([Q], "w/1", 1, 0)
    broker.requeue([d], delay=0.2)
    assert broker.fetch([Q], "w/1", 1, 0) == []
    stats = broker.stats([Q])[0]
    assert (stats.delayed, stats.unacked) == (1, 0)
    eventually(lambda: broker.promote([Q]) is None and broker.stats([Q])[0].ready_total == 1)
    [d2] = broker.fetch([Q], "w/1", 1, 0)
    assert (d2.body, d2.priority, d2.redeliveries) == (b"later", 4, 0)


def test_resend_stores_the_new_body_delayed_and_acks_the_delivery(broker: Broker) -> None:
    """resend (a rate-limit slot, a retry) leaves the new body delayed and the delivery finished."""
    broker.enqueue(Q, b"v1", priority=2)
    [d] = broker.fetch([Q], "w/1", 1, 0)
    broker.resend(d, Q, b"v2", priority=2, delay=0.2)
    stats = broker.stats([Q])[0]
    assert (stats.unacked, stats.delayed, stats.ready_total) == (0, 1, 0)
    assert [s.body for s in broker.scheduled([Q])] == [b"v2"]
    eventually(lambda: broker.promote([Q]) is None and broker.stats([Q])[0].ready_total == 1)
    assert [(x.body, x.priority) for x in broker.fetch([Q], "w/1", 1, 0)] == [(b"v2", 2)]


# -- dead letters ----------------------------------------------------------------------------

def test_dead_letter_takes_the_message_out_with_its_reason(broker: Broker) -> None:
    """dead_letter moves messages out of circulation; dead_letters lists them oldest first."""
    for body in (b"one", b"two", b"three"):
        broker.enqueue(Q, body)
    d1, d2, d3 = broker.fetch([Q], "w/1", 3, 0)
    before = time.time()
    broker.dead_letter([d1], "undecodable")
    broker.dead_letter([d2], "unknown task")
    letters = broker.dead_letters(Q)
    assert [(x.queue, x.body, x.reason) for x in letters] == [(Q, b"one", "undecodable"),
                                                             (Q, b"two", "unknown task")]
    assert all(abs(x.time - before) < 5 for x in letters)
    assert len({x.id for x in letters}) == 2
    assert [x.body for x in broker.dead_letters(Q, limit=1)] == [b"one"]
    stats = broker.stats([Q])[0]
    assert (stats.dead, stats.unacked, stats.ready_total) == (2, 1, 0)
    broker.ack([d3])


def test_retry_dead_puts_letters_back_and_drop_dead_deletes_them(broker: Broker) -> None:
    """retry_dead (some or all) makes dead letters ready again; drop_dead deletes them."""
    for body in (b"a", b"b", b"c", b"d"):
        broker.enqueue(Q, body, priority=6)
    broker.dead_letter(broker.fetch([Q], "w/1", 4, 0), "rejected")
    _a, b, c, _d = broker.dead_letters(Q)
    assert broker.retry_dead(Q, [b.id]) == 1
    [again] = broker.fetch([Q], "w/1", 10, 0)
    assert (again.body, again.priority, again.redeliveries) == (b"b", 6, 0)
    assert broker.drop_dead(Q, [c.id]) == 1
    assert [x.body for x in broker.dead_letters(Q)] == [b"a", b"d"]
    assert broker.retry_dead(Q) == 2
    revived = broker.fetch([Q], "w/1", 10, 0)
    assert sorted(bodies(revived)) == [b"a", b"d"]
    broker.ack([*revived, again])
    broker.enqueue(Q, b"e")
    broker.dead_letter(broker.fetch([Q], "w/1", 1, 0), "x")
    assert broker.drop_dead(Q) == 1
    assert broker.dead_letters(Q) == [] and broker.stats([Q])[0].dead == 0
    assert broker.retry_dead(Q) == 0 and broker.drop_dead(Q) == 0


# -- delayed messages ------------------------------------------------------------------------

def test_delayed_message_becomes_ready_at_its_due_time(broker: Broker) -> None:
    """A delayed message waits in the broker and is promoted once due, not before."""
    start = time.monotonic()
    broker.enqueue(Q, b"soon", delay=0.3, key="t1")
    assert broker.fetch([Q], "w/1", 1, 0) == []
    wait = broker.promote([Q])
    assert wait is not None and 0 < wait <= 0.3
    assert broker.stats([Q])[0].delayed == 1
    eventually(lambda: broker.promote([Q]) is None and broker.stats([Q])[0].ready_total == 1)
    assert time.monotonic() - start >= 0.29
    assert bodies(broker.fetch([Q], "w/1", 1, 0)) == [b"soon"]
    assert broker.stats([Q])[0].delayed == 0


def test_promote_reports_the_next_due_time(broker: Broker) -> None:
    """promote returns None with nothing delayed, else seconds until the next due message."""
    assert broker.promote([Q]) is None
    broker.enqueue(Q, b"x", delay=30)
    broker.enqueue(Q, b"y", delay=10)
    wait = broker.promote([Q])
    assert wait is not None and 8 < wait <= 10
    assert broker.promote(["elsewhere"]) is None


def test_promote_moves_each_message_once_when_many_call_it(make_broker: MakeBroker) -> None:
    """Promotion is atomic: concurrent promote() calls make each due message ready once."""
    broker = make_broker()
    broker.enqueue_many([(Q, b"%02d" % i, 0, 0.1, f"k{i}") for i in range(30)])
    time.sleep(0.2)
    others = [make_broker() for _ in range(4)]
    in_threads(4, lambda i: others[i].promote([Q], limit=7))
    eventually(lambda: broker.promote([Q]) is None)
    assert sorted(bodies(drain(broker, [Q]))) == [b"%02d" % i for i in range(30)]


def test_promote_respects_its_limit(broker: Broker) -> None:
    """promote(limit=n) moves at most n and says more are due now (0.0)."""
    broker.enqueue_many([(Q, bytes([i]), 0, 0.05, "") for i in range(5)])
    time.sleep(0.1)
    assert broker.promote([Q], limit=2) == 0.0
    assert broker.stats([Q])[0].ready_total == 2
    assert broker.promote([Q]) is None


def test_scheduled_lists_delayed_messages_soonest_first(broker: Broker) -> None:
    """scheduled() shows delayed messages of the given queues by due time; remove_scheduled
    drops one by key."""
    before = time.time()
    broker.enqueue("a", b"t1", delay=50, key="t1", priority=1)
    broker.enqueue("b", b"t2", delay=10, key="t2", priority=2)
    broker.enqueue("a", b"t3", delay=30, key="t3")
    listed = broker.scheduled(["a", "b"])
    assert [(s.key, s.queue, s.priority, s.body) for s in listed] == [
        ("t2", "b", 2, b"t2"), ("t3", "a", 0, b"t3"), ("t1", "a", 1, b"t1")]
    assert abs(listed[0].due - (before + 10)) < 2
    assert [s.key for s in broker.scheduled(["a", "b"], limit=2)] == ["t2", "t3"]
    assert [s.key for s in broker.scheduled(["a"])] == ["t3", "t1"]
    assert broker.remove_scheduled("a", "t3") is True
    assert broker.remove_scheduled("a", "t3") is False
    assert broker.remove_scheduled("a", "t2") is False  # t2 is in b
    assert [s.key for s in broker.scheduled(["a", "b"])] == ["t2", "t1"]
    assert broker.stats(["a"])[0].delayed == 1


def test_reschedule_moves_a_delayed_message_and_leaves_others_alone(broker: Broker) -> None:
    """reschedule() changes one delayed message's due time by key (due at once: ready at the
    next promote); an unknown or already promoted key is False and changes nothing."""
    broker.enqueue(Q, b"held", delay=3600, key="k1")
    broker.enqueue(Q, b"other", delay=3600, key="k2")
    assert broker.reschedule(Q, "nope", 0) is False
    assert broker.reschedule(Q, "k1", 0) is True
    eventually(lambda: broker.promote([Q]) is not None and broker.stats([Q])[0].ready_total == 1)
    assert bodies(drain(broker, [Q])) == [b"held"]
    assert [s.key for s in broker.scheduled([Q])] == ["k2"]
    assert broker.reschedule(Q, "k1", 0) is False  # promoted already: calling again is harmless
    assert broker.stats([Q])[0].ready_total == 0


# -- inspection and maintenance --------------------------------------------------------------

def test_stats_count_ready_per_priority_delayed_leased_and_dead(broker: Broker) -> None:
    """stats() reports depth per priority plus delayed, unacked and dead counts."""
    for prio in (0, 0, 7, 7, 3):
        broker.enqueue(Q, b"m", priority=prio)
    broker.enqueue(Q, b"later", delay=30)
    leased = broker.fetch([Q], "w/1", 2, 0)  # the two 7s
    broker.dead_letter(broker.fetch([Q], "w/1", 1, 0), "bad")  # the 3
    [stats, empty] = broker.stats([Q, "never-used"])
    assert stats.name == Q
    assert stats.ready == [2, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert (stats.ready_total, stats.delayed, stats.unacked, stats.dead) == (2, 1, 2, 1)
    assert (empty.name, empty.ready_total, empty.delayed, empty.unacked, empty.dead) == ("never-used", 0, 0, 0, 0)
    broker.ack(leased)


def test_purge_drops_ready_and_delayed_but_never_leased(broker: Broker) -> None:
    """purge() empties queues of waiting messages and leaves running ones alone."""
    for i in range(3):
        broker.enqueue(Q, bytes([i]), priority=i * 4)
    broker.enqueue(Q, b"later", delay=30)
    broker.enqueue("other", b"untouched")
    [running] = broker.fetch([Q], "w/1", 1, 0)
    assert broker.purge([Q]) == 3
    stats = broker.stats([Q])[0]
    assert (stats.ready_total, stats.delayed, stats.unacked) == (0, 0, 1)
    assert bodies(broker.fetch(["other"], "w/1", 1, 0)) == [b"untouched"]
    broker.ack([running])
    assert broker.stats([Q])[0].unacked == 0
    assert broker.purge([Q]) == 0


def test_queues_lists_every_queue_that_held_a_message(broker: Broker) -> None:
    """queues() is sorted and remembers queues after they empty."""
    broker.enqueue("zeta", b"z")
    broker.enqueue("alpha", b"a")
    broker.enqueue("mid", b"m", delay=30)
    drain(broker, ["zeta", "alpha"])
    broker.purge(["mid"])
    names = broker.queues()
    assert names == sorted(names)
    assert {"alpha", "mid", "zeta"} <= set(names)


def test_workers_registry_shows_alive_then_lapsed_then_gone(make_broker: MakeBroker) -> None:
    """A heartbeating worker is alive; one that stopped is listed as not alive; deregister
    removes it."""
    broker = make_broker(lease_seconds=1.0)
    before = broker.now()
    broker.heartbeat("w1#a", b'{"pid": 1}', [Q], first=True)
    broker.heartbeat("w2#b", b"{}", [Q], first=True)
    records = {r.name: r for r in broker.workers()}
    assert set(records) == {"w1", "w2"}
    assert records["w1"].incarnation == "w1#a"
    assert records["w1"].info == b'{"pid": 1}' and records["w1"].alive
    assert abs(records["w1"].last_seen - before) < 2
    deadline = time.monotonic() + 1.3  # w2 beats (every 0.1 s, well inside the stall bound); w1 lapses
    while time.monotonic() < deadline:
        broker.heartbeat("w2#b", b"{}", [Q])
        time.sleep(0.1)
    records = {r.name: r for r in broker.workers()}
    assert (records["w1"].alive, records["w2"].alive) == (False, True)
    broker.deregister("w2#b")
    assert [r.name for r in broker.workers()] == ["w1"]


# -- coordination primitives -----------------------------------------------------------------

def test_now_is_the_epoch_clock(broker: Broker) -> None:
    """now() is seconds since the epoch (the test's host shares the broker's clock)."""
    assert abs(broker.now() - time.time()) < 1.0


def test_rate_slot_spaces_starts_by_the_interval(broker: Broker) -> None:
    """rate_slot reserves consecutive slots one interval apart; an idle key starts at once."""
    slots = [broker.rate_slot("task.a", 0.2) for _ in range(3)]
    assert slots[0] == 0.0
    assert slots[1] == pytest.approx(0.2, abs=0.05)
    assert slots[2] == pytest.approx(0.4, abs=0.05)
    assert broker.rate_slot("task.b", 0.2) == 0.0
    time.sleep(0.7)  # past every reserved slot
    assert broker.rate_slot("task.a", 0.2) == 0.0


def test_rate_slots_are_global_across_connections(make_broker: MakeBroker) -> None:
    """Concurrent callers never get the same slot: n callers span n-1 intervals."""
    others = [make_broker() for _ in range(4)]
    slots = sorted(in_threads(4, lambda i: others[i].rate_slot("shared", 1.0)))  # type: ignore[type-var]
    assert slots[0] == pytest.approx(0.0, abs=0.1)
    for prev, nxt in itertools.pairwise(slots):
        assert nxt - prev == pytest.approx(1.0, abs=0.1)


def test_claim_succeeds_for_exactly_one_caller(make_broker: MakeBroker) -> None:
    """claim() is set-if-absent: one winner among racing callers, again only after the ttl."""
    others = [make_broker() for _ in range(4)]
    wins = in_threads(4, lambda i: others[i].claim("beat:tick:1", 0.3))
    assert sorted(wins) == [False, False, False, True]  # type: ignore[type-var]
    assert others[0].claim("beat:tick:1", 0.3) is False
    assert others[0].claim("beat:tick:2", 0.3) is True
    time.sleep(0.4)
    assert others[1].claim("beat:tick:1", 0.3) is True


def test_put_get_delete_with_expiry(broker: Broker) -> None:
    """put replaces, get returns None when absent or expired, delete tolerates absence."""
    assert broker.get("k") is None
    broker.put("k", b"v1")
    broker.put("k", b"v2")
    assert broker.get("k") == b"v2"
    broker.put("short", b"x", ttl=0.2)
    assert broker.get("short") == b"x"
    time.sleep(0.3)
    assert broker.get("short") is None
    assert broker.get("k") == b"v2"
    broker.delete("k")
    broker.delete("k")
    assert broker.get("k") is None


def test_map_set_get_delete(broker: Broker) -> None:
    """Maps hold fields; map_delete says whether the field was there."""
    assert broker.map_get("revoked") == {}
    broker.map_set("revoked", "t1", b"1")
    broker.map_set("revoked", "t2", b"2")
    broker.map_set("revoked", "t1", b"3")
    broker.map_set("other", "t1", b"x")
    assert broker.map_get("revoked") == {"t1": b"3", "t2": b"2"}
    assert broker.map_delete("revoked", "t1") is True
    assert broker.map_delete("revoked", "t1") is False
    assert broker.map_get("revoked") == {"t2": b"2"}


def test_log_ids_increase_and_reads_resume_after_an_id(broker: Broker) -> None:
    """log_append returns increasing ids; log_read returns entries after an id, up to count."""
    ids = [broker.log_append("events", b"e%d" % i, 100) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert broker.log_read("events", None, 10) == [(i, b"e%d" % n) for n, i in enumerate(ids)]
    assert broker.log_read("events", ids[1], 2) == [(ids[2], b"e2"), (ids[3], b"e3")]
    assert broker.log_read("events", ids[4], 10) == []
    assert broker.log_read("events", "$", 10) == []
    assert broker.log_read("nothing", None, 10) == []


def test_log_last_lets_a_reader_start_from_now_without_gaps(broker: Broker) -> None:
    """log_last names the newest entry; following ids from it sees every later append."""
    assert broker.log_last("control") is None
    broker.log_append("control", b"old", 100)
    start = broker.log_last("control")
    assert start is not None
    broker.log_append("control", b"new1", 100)
    broker.log_append("control", b"new2", 100)
    assert [d for _, d in broker.log_read("control", start, 10)] == [b"new1", b"new2"]


def test_log_keeps_only_the_newest_entries_past_maxlen(broker: Broker) -> None:
    """A capped log drops its oldest entries: the newest maxlen stay, the first ones go."""
    ids = [broker.log_append("capped", b"%03d" % i, 10) for i in range(300)]
    kept = broker.log_read("capped", None, 1000)
    assert kept[-10:] == [(ids[i], b"%03d" % i) for i in range(290, 300)]
    assert kept[0][0] != ids[0] and len(kept) < 300


def test_log_append_many_appends_in_order(broker: Broker) -> None:
    """log_append_many adds entries in order after the existing ones, within the cap."""
    first = broker.log_append("batch", b"a", 100)
    broker.log_append_many("batch", [b"b", b"c", b"d"], 100)
    broker.log_append_many("batch", [], 100)
    entries = broker.log_read("batch", first, 10)
    assert [data for _, data in entries] == [b"b", b"c", b"d"]
    assert [i for i, _ in entries] == sorted(i for i, _ in entries) and entries[0][0] > first


def test_a_log_with_a_ttl_vanishes_that_long_after_its_last_append(broker: Broker) -> None:
    """log_append(ttl=...) makes the whole log disappear ttl seconds after the append; a later
    append with a ttl pushes that back; other logs stay."""
    broker.log_append("reply:1", b"a", 100, ttl=0.5)
    broker.log_append("kept", b"k", 100)
    time.sleep(0.3)
    last = broker.log_append("reply:1", b"b", 100, ttl=0.5)
    time.sleep(0.3)  # 0.6 s after the first append, 0.3 s after the second
    assert [data for _, data in broker.log_read("reply:1", None, 10)] == [b"a", b"b"]
    time.sleep(0.4)
    assert broker.log_read("reply:1", None, 10) == []
    assert [data for _, data in broker.log_read("kept", None, 10)] == [b"k"]
    again = broker.log_append("reply:1", b"c", 100, ttl=0.5)
    assert again > last  # a recreated log's ids still sort after the old ones
    assert [data for _, data in broker.log_read("reply:1", None, 10)] == [b"c"]


def test_blocking_log_read_wakes_on_append(make_broker: MakeBroker) -> None:
    """log_read("$", timeout) waits for the next entry and returns promptly when it comes."""
    reader, writer = make_broker(), make_broker()
    writer.log_append("events", b"old", 100)
    got: list[tuple[list[tuple[str, bytes]], float]] = []
    thread = threading.Thread(target=lambda: got.append(
        (reader.log_read("events", "$", 10, timeout=5.0), time.monotonic())))
    thread.start()
    time.sleep(0.3)
    sent = time.monotonic()
    writer.log_append("events", b"new", 100)
    thread.join(6)
    [(entries, woke)] = got
    assert [data for _, data in entries] == [b"new"]
    assert woke - sent < 0.5


def test_blocking_log_read_gives_up_after_its_timeout(broker: Broker) -> None:
    """log_read with a timeout and nothing new returns [] after about that long."""
    broker.log_append("events", b"old", 100)
    start = time.monotonic()
    assert broker.log_read("events", "$", 10, timeout=0.3) == []
    assert 0.25 <= time.monotonic() - start < 2.0


# -- implementation specifics ----------------------------------------------------------------

def test_memory_brokers_built_from_one_url_share_their_messages() -> None:
    """memory://name is one store per process: the app's broker and a test's broker agree,
    other names are separate, and memory:// is one process-wide default."""
    name = f"memory://shared-{uuid.uuid4().hex}"
    app_side, test_side = MemoryBroker(name), brokers.from_url(name)
    elsewhere = brokers.from_url(f"memory://other-{uuid.uuid4().hex}")
    default_a, default_b = brokers.from_url("memory://"), MemoryBroker()
    queue = f"q-{uuid.uuid4().hex}"  # the default store is process-wide: keep to a fresh queue
    try:
        app_side.enqueue(Q, b"x")
        assert test_side.stats([Q])[0].ready_total == 1
        assert elsewhere.stats([Q])[0].ready_total == 0
        assert bodies(test_side.fetch([Q], "w/1", 1, 0)) == [b"x"]
        default_a.enqueue(queue, b"d")
        got = default_b.fetch([queue], "w/1", 1, 0)
        assert bodies(got) == [b"d"]
        default_b.ack(got)
    finally:
        for b in (app_side, elsewhere):
            b.flush()
        for b in (app_side, test_side, elsewhere, default_a, default_b):
            b.close()


def test_sqlite_full_disk_raises_broker_full_and_writes_nothing(tmp_path: Path) -> None:
    """A full database raises BrokerFull with a clear message and no partial batch."""
    broker = SQLiteBroker(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        broker.enqueue(Q, b"seed")
        pages = broker._db.read(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        broker._db.read(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 8}").fetchone())
        stored = 1
        with pytest.raises(BrokerFull, match="full"):
            for _ in range(100):
                broker.enqueue(Q, b"x" * 4000)
                stored += 1
        assert broker.stats([Q])[0].ready_total == stored
        with pytest.raises(BrokerFull):
            broker.enqueue_many([(Q, b"y" * 4000, 0, 0.0, "") for _ in range(10)])
        assert broker.stats([Q])[0].ready_total == stored
        assert len(drain(broker, [Q])) == stored  # reads and lease updates still work
    finally:
        broker.close()


def test_sqlite_busy_never_reaches_the_caller(tmp_path: Path) -> None:
    """While another process holds the write lock, calls wait for it instead of failing."""
    path = tmp_path / "busy.db"
    broker = SQLiteBroker(f"sqlite:///{path}")
    broker.enqueue(Q, b"first")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
        start = time.monotonic()
        broker.enqueue(Q, b"second")
        assert 0.4 <= time.monotonic() - start < 5.0
        assert len(drain(broker, [Q])) == 2
    finally:
        time.sleep(0.1)
        holder.close()
        broker.close()


def test_sqlite_durability_modes(tmp_path: Path) -> None:
    """WAL always; synchronous=NORMAL by default and FULL with durable=True."""
    url = f"sqlite:///{tmp_path / 'modes.db'}"
    normal, durable = SQLiteBroker(url), brokers.from_url(url, durable=True)
    try:
        def synchronous(b: Broker) -> int:
            return int(b._db.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]))  # type: ignore[attr-defined]

        assert (synchronous(normal), synchronous(durable)) == (1, 2)
        assert normal.check() == []
        assert normal._db.journal_mode == "wal"
    finally:
        normal.close()
        durable.close()


def test_sqlite_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """3 slashes = relative, 4 = absolute; ``sqlite://`` + an absolute path is understood;
    URLs without a file are refused with a reason."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert sqlite_path("sqlite:///data/q.db") == str(tmp_path / "data" / "q.db")
    assert sqlite_path("sqlite:///q.db") == str(tmp_path / "q.db")
    assert sqlite_path("sqlite:////var/lib/q.db") == "/var/lib/q.db"
    assert sqlite_path("sqlite:///tmp/q.db") == "/tmp/q.db"  # there is no ./tmp, there is /tmp
    assert sqlite_path("sqlite:///tmp/not/yet/q.db") == "/tmp/not/yet/q.db"
    assert sqlite_path("sqlite:///new/q.db") == str(tmp_path / "new" / "q.db")  # neither: relative
    assert sqlite_path("sqlite://localhost/tmp/q.db") == "/tmp/q.db"
    for bad in ("sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite://host/x.db", "sqlite:///x.db?a=1"):
        with pytest.raises(ConfigurationError):
            sqlite_path(bad)


def test_sqlite_creates_missing_directories(tmp_path: Path) -> None:
    """The default URL points into a data directory that may not exist yet: it is created."""
    broker = brokers.from_url(f"sqlite:///{tmp_path / 'data' / 'celeriac' / 'q.db'}")
    try:
        broker.enqueue(Q, b"x")
        assert (tmp_path / "data" / "celeriac" / "q.db").exists()
    finally:
        broker.close()


def _use_inherited(broker: Broker) -> None:
    got = broker.fetch([Q], "child/1", 1, 2.0)
    broker.ack(got)
    broker.enqueue(Q, b"from child" if bodies(got) == [b"from parent"] else b"wrong")


def test_sqlite_broker_reconnects_after_fork(tmp_path: Path) -> None:
    """A broker object inherited through fork opens its own connection in the child."""
    broker = SQLiteBroker(f"sqlite:///{tmp_path / 'fork.db'}")
    try:
        broker.enqueue(Q, b"from parent")  # the parent's connection is open now
        ctx = multiprocessing.get_context("fork")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            child = ctx.Process(target=_use_inherited, args=(broker,))
            child.start()
        child.join(20)
        assert child.exitcode == 0
        assert bodies(broker.fetch([Q], "parent/1", 5, 0)) == [b"from child"]
    finally:
        broker.close()


def test_sqlite_fetch_without_the_doorbell_wakes_within_the_poll_cap(tmp_path: Path) -> None:
    """Where the doorbell cannot be used, a blocked fetch still wakes within the 50 ms poll."""
    url = f"sqlite:///{tmp_path / 'poll.db'}"
    consumer, producer = SQLiteBroker(url), SQLiteBroker(url)
    consumer._bell.enabled = producer._bell.enabled = False
    try:
        got: list[tuple[list[Delivery], float]] = []
        thread = threading.Thread(target=lambda: got.append(
            (consumer.fetch([Q], "w/1", 1, 5.0), time.monotonic())))
        thread.start()
        time.sleep(0.3)
        sent = time.monotonic()
        producer.enqueue(Q, b"polled")
        thread.join(6)
        [(deliveries, woke)] = got
        assert bodies(deliveries) == [b"polled"]
        assert woke - sent < 0.25
    finally:
        consumer.close()
        producer.close()


def test_sqlite_doorbell_removes_sockets_of_dead_processes(tmp_path: Path) -> None:
    """A waiter's socket left behind by a killed process is unlinked by the next ring."""
    bell = Doorbell(str(tmp_path / "bell.db"))
    try:
        with bell.listen("q") as listener:
            assert listener.sock is not None
            stale = listener.sock.getsockname()
            listener.sock.close()  # as if its process died: the file stays, nobody reads
            bell.ring({"q"})
            assert not os.path.exists(stale)
    finally:
        bell.close()
