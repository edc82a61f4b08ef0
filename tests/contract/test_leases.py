"""The lease part of the broker contract: heartbeats, recovery, incarnations, stalls, fencing.

Run against memory, SQLite and Redis. Leases are 1 s here (not the default 6 s) and a live
worker beats every 0.1 s from a thread of its own, so a loaded machine delaying one beat by a
few hundred milliseconds cannot make a live worker look dead; a "dead" worker simply stops.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from celeriac import backends, brokers
from celeriac.backends.base import ResultBackend
from celeriac.brokers.base import BEAT_FORGOTTEN, BEAT_LAPSED, BEAT_OK, Broker, Delivery

from .test_broker_contract import drain, in_threads

Q = "leases"
LEASE = 1.0
MakeBroker = Callable[..., Broker]


@contextmanager
def beating(broker: Broker, worker: str, queues: Sequence[str] = (Q,),
            running: Callable[[], Sequence[Delivery]] = lambda: ()) -> Iterator[None]:
    """``worker`` is alive for the block: it beats every 0.1 s, reporting ``running()``."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            broker.heartbeat(worker, b"{}", list(queues), running=running())
            stop.wait(0.1)

    broker.heartbeat(worker, b"{}", list(queues), running=running(), first=True)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def wait_lapse() -> None:
    time.sleep(LEASE * 1.3)


def test_heartbeat_keeps_a_long_running_lease(make_broker: MakeBroker) -> None:
    """No false redelivery: while its worker beats, a delivery is never handed out again,
    however long past its lease it runs, and nobody recovers it."""
    broker, other = make_broker(lease_seconds=LEASE), make_broker(lease_seconds=LEASE)
    broker.enqueue(Q, b"long")
    with beating(broker, "w1#a"), beating(other, "w2#b"):
        [d] = broker.fetch([Q], "w1#a/1", 1, 0)
        deadline = time.monotonic() + 3 * LEASE
        while time.monotonic() < deadline:
            assert other.recover("w2#b") == []
            assert other.fetch([Q], "w2#b/1", 1, 0) == []
            time.sleep(0.1)
        assert [x.body for _, x in broker.held("w1#a", [Q])] == [b"long"]
        broker.ack([d])
    assert broker.stats([Q])[0].unacked == 0


def test_recovery_charges_only_what_the_dead_worker_had_started(make_broker: MakeBroker) -> None:
    """A dead worker's messages come back after its lease; only the one it reported running
    counts a redelivery, its prefetched ones go back innocent."""
    broker = make_broker(lease_seconds=LEASE)
    for body in (b"running", b"prefetched1", b"prefetched2"):
        broker.enqueue(Q, body)
    broker.heartbeat("dead#a", b"{}", [Q], first=True)
    held = {d.body: d for d in broker.fetch([Q], "dead#a/1", 3, 0)}
    broker.heartbeat("dead#a", b"{}", [Q], running=[held[b"running"]])
    with beating(broker, "alive#b"):
        wait_lapse()
        assert broker.recover("alive#b") == []  # within the cap: back in the queue
        again = {d.body: d.redeliveries for d in drain(broker, [Q], "alive#b/1")}
    assert again == {b"running": 1, b"prefetched1": 0, b"prefetched2": 0}


def test_recovery_dead_letters_a_message_past_max_redeliveries(make_broker: MakeBroker) -> None:
    """A message whose workers keep dying while running it is dead-lettered once past the cap,
    with a reason; retry_dead gives it a fresh count."""
    broker = make_broker(lease_seconds=LEASE, max_redeliveries=1)
    broker.enqueue(Q, b"poison")
    dead: list[Delivery] = []
    with beating(broker, "judge#z"):
        for attempt, expected in enumerate((0, 1)):
            worker = f"victim#{attempt}"
            broker.heartbeat(worker, b"{}", [Q], first=True)
            [d] = broker.fetch([Q], f"{worker}/1", 1, 0)
            assert d.redeliveries == expected
            broker.heartbeat(worker, b"{}", [Q], running=[d])
            wait_lapse()
            dead = broker.recover("judge#z")
    assert [x.body for x in dead] == [b"poison"]
    [letter] = broker.dead_letters(Q)
    assert re.match(r"redelivered 2 times: ", letter.reason), letter.reason
    assert broker.fetch([Q], "w2/1", 1, 0) == []
    assert broker.retry_dead(Q) == 1
    assert broker.fetch([Q], "w2/1", 1, 0)[0].redeliveries == 0


def test_a_restart_under_the_same_name_does_not_keep_the_dead_leases(make_broker: MakeBroker) -> None:
    """Leases belong to incarnations: the new process of a worker named "w" beating does not
    keep its dead predecessor's leases alive; they come back after one lease."""
    broker = make_broker(lease_seconds=LEASE)
    broker.enqueue(Q, b"stranded")
    broker.heartbeat("w#old", b"{}", [Q], first=True)
    broker.fetch([Q], "w#old/1", 1, 0)
    with beating(broker, "w#new"):
        wait_lapse()
        broker.recover("w#new")
        [again] = broker.fetch([Q], "w#new/1", 1, 0)
    assert again.body == b"stranded"
    names = [(r.name, r.incarnation, r.alive) for r in broker.workers()]
    assert ("w", "w#old", False) in names


def test_evict_gives_back_at_once_charging_only_started(make_broker: MakeBroker) -> None:
    """evict(): a predecessor proved dead gives back everything now, lease or not."""
    broker = make_broker(lease_seconds=30.0)
    broker.enqueue(Q, b"was running")
    broker.enqueue(Q, b"was prefetched")
    broker.heartbeat("w#old", b"{}", [Q], first=True)
    held = {d.body: d for d in broker.fetch([Q], "w#old/7", 2, 0)}
    broker.heartbeat("w#old", b"{}", [Q], running=[held[b"was running"]])
    assert broker.evict("w#old") == []
    again = {d.body: d.redeliveries for d in drain(broker, [Q], "w#new/1")}
    assert again == {b"was running": 1, b"was prefetched": 0}
    assert [r.alive for r in broker.workers() if r.incarnation == "w#old"] == [False]


def test_holding_tells_what_is_still_leased_to_a_consumer(make_broker: MakeBroker) -> None:
    """holding(): what a consumer fetched, minus what was recovered from it meanwhile."""
    broker = make_broker(lease_seconds=LEASE)
    broker.enqueue(Q, b"a")
    broker.enqueue(Q, b"b")
    broker.heartbeat("paused#a", b"{}", [Q], first=True)
    a, b = broker.fetch([Q], "paused#a/1", 2, 0)
    assert broker.holding("paused#a/1", [a, b]) == [a, b]
    assert broker.holding("paused#a/2", [a, b]) == []
    broker.ack([a])
    assert broker.holding("paused#a/1", [a, b]) == [b]
    with beating(broker, "other#b"):
        wait_lapse()
        broker.recover("other#b")
        [b2] = broker.fetch([Q], "other#b/1", 1, 0)
    assert b2.body == b"b"
    assert broker.holding("paused#a/1", [b]) == []
    assert broker.holding("other#b/1", [b2]) == [b2]


def test_a_lapsed_worker_is_told_so_by_its_next_beat(make_broker: MakeBroker) -> None:
    """heartbeat() says BEAT_LAPSED to a worker whose lease lapsed (whether or not recovery ran
    yet), BEAT_OK otherwise."""
    broker = make_broker(lease_seconds=LEASE)
    assert broker.heartbeat("zombie#a", b"{}", [Q], first=True) == BEAT_OK
    assert broker.heartbeat("zombie#a", b"{}", [Q]) == BEAT_OK
    broker.enqueue(Q, b"x")
    broker.fetch([Q], "zombie#a/1", 1, 0)
    with beating(broker, "live#b"):
        wait_lapse()
        broker.recover("live#b")
        assert broker.heartbeat("zombie#a", b"{}", [Q]) == BEAT_LAPSED
        assert broker.heartbeat("zombie#a", b"{}", [Q]) == BEAT_OK


def test_a_broker_that_lost_its_data_is_noticed(make_broker: MakeBroker) -> None:
    """A beat that is not the first, from a worker the broker never heard of, is
    BEAT_FORGOTTEN: the broker lost its data (restarted empty, flushed)."""
    broker = make_broker(lease_seconds=LEASE)
    assert broker.heartbeat("w#a", b"{}", [Q], first=True) == BEAT_OK
    assert broker.heartbeat("w#unknown", b"{}", [Q]) == BEAT_FORGOTTEN


def test_recovery_refuses_while_the_callers_own_lease_lapsed(make_broker: MakeBroker) -> None:
    """A worker that was paused or cut off must not judge others by its own stale view."""
    broker = make_broker(lease_seconds=LEASE)
    broker.enqueue(Q, b"victim")
    broker.heartbeat("busy#a", b"{}", [Q], first=True)
    broker.fetch([Q], "busy#a/1", 1, 0)
    broker.heartbeat("stale#b", b"{}", [Q], first=True)
    with beating(broker, "busy#a"):
        wait_lapse()  # stale#b has not beaten for longer than its lease
        broker.recover("stale#b")
        assert [d.body for _, d in broker.held("busy#a", [Q])] == [b"victim"]


def test_a_broker_stall_longer_than_the_lease_recovers_nothing(make_broker: MakeBroker) -> None:
    """Promise 2 under a stall: when nobody got through for longer than a lease (the broker
    was paused), the first beat after it extends every lease instead of letting the fastest
    worker take the others' running tasks."""
    broker = make_broker(lease_seconds=LEASE)
    broker.enqueue(Q, b"running on w1")
    broker.heartbeat("w1#a", b"{}", [Q], first=True)
    broker.heartbeat("w2#b", b"{}", [Q], first=True)
    [d] = broker.fetch([Q], "w1#a/1", 1, 0)
    time.sleep(LEASE * 1.5)  # the stall: no beat reaches the broker
    assert broker.recover() == []  # nobody has beaten since: the broker may just be back
    assert broker.heartbeat("w2#b", b"{}", [Q]) == BEAT_OK  # first through after the stall
    assert broker.recover("w2#b") == []
    assert broker.fetch([Q], "w2#b/1", 1, 0) == []
    assert broker.heartbeat("w1#a", b"{}", [Q]) == BEAT_OK  # w1's lease was carried over the stall
    assert broker.holding("w1#a/1", [d]) == [d]


def test_fenced_finish_never_replaces_the_result_of_the_attempt_that_holds_the_message(
        make_broker: MakeBroker, make_backend: Callable[..., ResultBackend], kind: str) -> None:
    """A zombie attempt (its lease lapsed, its message recovered and run elsewhere) finishes
    late: its result and ack are dropped; the live attempt's result stands. A finish by the
    holder goes through."""
    broker = make_broker(lease_seconds=LEASE)
    backend = make_backend()
    broker.enqueue(Q, b"task-1")
    broker.heartbeat("zombie#a", b"{}", [Q], first=True)
    [stale] = broker.fetch([Q], "zombie#a/1", 1, 0)
    with beating(broker, "live#b"):
        wait_lapse()
        broker.recover("live#b")
        [fresh] = broker.fetch([Q], "live#b/1", 1, 0)
        assert broker.finish_fenced("live#b/1", [(fresh, [("t1", b'{"status": "SUCCESS"}', True)])],
                                    backend=backend) == []
        dropped = broker.finish_fenced("zombie#a/1", [(stale, [("t1", b'{"status": "FAILURE"}', True)])],
                                       backend=backend)
    assert dropped == [stale]
    assert backend.read("t1") == b'{"status": "SUCCESS"}'
    assert broker.stats([Q])[0].unacked == 0 and drain(broker, [Q], "x#c/1") == []


def test_fenced_finish_shares_the_result_file_with_an_sqlite_broker(tmp_path: Path) -> None:
    """On SQLite with results in the broker's own file, the fenced finish is one transaction."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    broker, backend = brokers.from_url(url, lease_seconds=LEASE), backends.from_url(url)
    try:
        broker.enqueue(Q, b"m")
        broker.heartbeat("w#a", b"{}", [Q], first=True)
        [d] = broker.fetch([Q], "w#a/1", 1, 0)
        assert broker.finish_fenced("w#a/1", [(d, [("t2", b"done", True)])], backend=backend) == []
        assert backend.read("t2") == b"done"
        assert broker.finish_fenced("w#a/1", [(d, [("t2", b"again", True)])], backend=backend) == [d]
        assert backend.read("t2") == b"done"
    finally:
        backend.close()
        broker.close()


def _finish_resend_and_bury(broker: Broker, backend: ResultBackend) -> None:
    """One message finished, one replaced by its next attempt, one dead-lettered, each with the
    record it leaves; then what the broker and the store hold must say so."""
    for body in (b"a", b"b", b"c"):
        broker.enqueue(Q, body)
    broker.heartbeat("w#a", b"{}", [Q], first=True)
    da, db, dc = sorted(broker.fetch([Q], "w#a/1", 3, 0), key=lambda d: d.body)
    broker.finish([da], backend=backend, records=[("ta", b"done", True)])
    broker.resend(db, Q, b"b2", backend=backend, records=[("tb", b"retry", False)])
    broker.dead_letter([dc], "failed", backend=backend, records=[("tc", b"failed", True)])
    assert [backend.read(t) for t in ("ta", "tb", "tc")] == [b"done", b"retry", b"failed"]
    assert [x.body for x in broker.dead_letters(Q)] == [b"c"]
    assert [d.body for d in broker.fetch([Q], "w#a/1", 3, 0)] == [b"b2"]
    stats = broker.stats([Q])[0]
    assert (stats.ready_total, stats.unacked, stats.dead) == (0, 1, 1)


def test_finish_resend_and_dead_letter_store_the_records_they_are_given(
        make_broker: MakeBroker, make_backend: Callable[..., ResultBackend], kind: str) -> None:
    _finish_resend_and_bury(make_broker(lease_seconds=LEASE), make_backend())


def test_finish_resend_and_dead_letter_share_the_result_file_with_an_sqlite_broker(tmp_path: Path) -> None:
    """Results in the broker's own file: each writes its records in the transaction of its own change."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    broker, backend = brokers.from_url(url, lease_seconds=LEASE), backends.from_url(url)
    try:
        _finish_resend_and_bury(broker, backend)
    finally:
        backend.close()
        broker.close()


def racing_recoveries(broker: Broker, judges: list[Broker], judge: str, done: Callable[[], int],
                      expected: int = 20) -> list[Delivery]:
    """Four recover() calls at once, again until ``done()`` counts ``expected`` (bounded): a judge
    starved of CPU may miss a beat, and then rightly judges nobody that round."""
    dead: list[Delivery] = []
    deadline = time.monotonic() + 10 * LEASE
    while True:
        dead += [d for part in in_threads(4, lambda i: judges[i].recover(judge)) for d in part]  # type: ignore[attr-defined]
        if done() >= expected or time.monotonic() > deadline:
            return dead
        time.sleep(0.1)


def test_each_lost_message_is_recovered_exactly_once(make_broker: MakeBroker) -> None:
    """recover() run by many workers at once dead-letters each started message once."""
    broker = make_broker(lease_seconds=LEASE, max_redeliveries=0)
    broker.enqueue_many([(Q, b"%02d" % i, 0, 0.0, "") for i in range(20)])
    broker.heartbeat("gone#a", b"{}", [Q], first=True)
    fetched = drain(broker, [Q], "gone#a/1")
    assert len(fetched) == 20
    broker.heartbeat("gone#a", b"{}", [Q], running=fetched)
    others = [make_broker(lease_seconds=LEASE, max_redeliveries=0) for _ in range(4)]
    with beating(broker, "judge#b"):
        wait_lapse()
        dead = [d.body for d in racing_recoveries(broker, others, "judge#b", lambda: len(broker.dead_letters(Q)))]
    assert sorted(dead) == [b"%02d" % i for i in range(20)]
    assert len(broker.dead_letters(Q)) == 20


def test_concurrent_recovery_returns_each_message_to_the_queue_once(make_broker: MakeBroker) -> None:
    """Recovered messages are ready exactly once however many recover() calls race."""
    broker = make_broker(lease_seconds=LEASE)
    broker.enqueue_many([(Q, b"%02d" % i, 0, 0.0, "") for i in range(20)])
    broker.heartbeat("gone#a", b"{}", [Q], first=True)
    fetched = drain(broker, [Q], "gone#a/1")
    broker.heartbeat("gone#a", b"{}", [Q], running=fetched)
    others = [make_broker(lease_seconds=LEASE) for _ in range(4)]
    with beating(broker, "judge#b"):
        wait_lapse()
        racing_recoveries(broker, others, "judge#b", lambda: broker.stats([Q])[0].ready_total)
        again = drain(broker, [Q], "alive#c/1")
    assert sorted(d.body for d in again) == [b"%02d" % i for i in range(20)]
    assert {d.redeliveries for d in again} == {1}


def test_release_charges_only_the_deliveries_that_were_running(make_broker: MakeBroker) -> None:
    """release() gives back a dead process's deliveries: charged ones count a redelivery (and
    are dead-lettered past the cap), prefetched ones go back free."""
    broker = make_broker(max_redeliveries=1)
    for body in (b"running", b"prefetched1", b"prefetched2"):
        broker.enqueue(Q, body)
    broker.enqueue("elsewhere", b"kept")
    broker.heartbeat("w1#a", b"", [Q, "elsewhere"], first=True)
    running, *_ = broker.fetch([Q], "w1#a/p1", 3, 0)
    [kept] = broker.fetch(["elsewhere"], "w1#a/p1", 1, 0)
    assert broker.fetch([Q], "w1#a/p2", 1, 0) == []  # all three are p1's
    assert broker.release("w1#a/p1", [Q], charged=[running]) == []
    again = {d.body: d for d in broker.fetch([Q], "w1#a/p3", 3, 0)}
    assert {k: d.redeliveries for k, d in again.items()} == {b"running": 1, b"prefetched1": 0,
                                                            b"prefetched2": 0}
    assert [d.body for _, d in broker.held("w1#a", ["elsewhere"])] == [kept.body]  # other queue untouched
    dead = broker.release("w1#a/p3", [Q], charged=[again[b"running"]])
    assert [(d.body, d.redeliveries) for d in dead] == [(b"running", 2)]
    assert [x.body for x in broker.dead_letters(Q)] == [b"running"]
    assert sorted(d.body for d in broker.fetch([Q], "w1#a/p4", 3, 0)) == [b"prefetched1", b"prefetched2"]


def test_held_lists_every_delivery_of_a_worker(broker: Broker) -> None:
    """held(worker, queues) covers all of that incarnation's consumers, in those queues only."""
    for q in ("a", "b"):
        for i in range(2):
            broker.enqueue(q, f"{q}{i}".encode())
    broker.fetch(["a"], "w1#x/p1", 1, 0)
    broker.fetch(["a"], "w1#x/p2", 1, 0)
    broker.fetch(["b"], "w1#x/p1", 1, 0)
    broker.fetch(["b"], "w2#y/p1", 1, 0)
    held = broker.held("w1#x", ["a", "b"])
    assert sorted((c, d.queue, d.body) for c, d in held) == [
        ("w1#x/p1", "a", b"a0"), ("w1#x/p1", "b", b"b0"), ("w1#x/p2", "a", b"a1")]
    assert [(c, d.body) for c, d in broker.held("w1#x", ["b"])] == [("w1#x/p1", b"b0")]
    assert broker.held("w3#z", ["a", "b"]) == []


def test_ack_removes_the_message_for_good(make_broker: MakeBroker) -> None:
    """An acked message never comes back, even after its worker's lease expires."""
    broker = make_broker(lease_seconds=LEASE)
    broker.enqueue(Q, b"done")
    broker.heartbeat("w#a", b"", [Q], first=True)
    [d] = broker.fetch([Q], "w#a/1", 1, 0)
    broker.heartbeat("w#a", b"", [Q], running=[d])
    broker.ack([d])
    with beating(broker, "judge#b"):
        wait_lapse()
        broker.recover("judge#b")
        assert broker.fetch([Q], "w#b/2", 1, 0) == []
    assert broker.stats([Q])[0].unacked == 0
