"""Reconciling a consumer's leases with what it holds (worker/reconcile.py), on each broker:
after a broker came back without acks it had confirmed, only the messages a consumer no longer
holds go back, uncharged, and nothing it holds, nor another consumer's, is touched."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from celeriac.brokers.base import Broker, Delivery
from celeriac.engines.redis.broker import RedisBroker
from celeriac.worker import reconcile

from .test_broker_contract import drain

Q = "reconcile"
WORKER = "w1#a"
MakeBroker = Callable[..., Broker]


@pytest.fixture(params=["memory", "sqlite", "redis", "cluster"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _leased(broker: Broker) -> tuple[list[Delivery], list[Delivery]]:
    """Five messages over two priorities leased to consumer 1 of WORKER, one to consumer 2."""
    for i in range(6):
        broker.enqueue(Q, f"m{i}".encode(), priority=9 if i % 2 else 0)
    mine = broker.fetch([Q], f"{WORKER}/1", 5, 0)
    other = broker.fetch([Q], f"{WORKER}/2", 1, 0)
    assert len(mine) == 5 and len(other) == 1
    return mine, other


def test_only_what_the_consumer_no_longer_holds_goes_back_uncharged(make_broker: MakeBroker) -> None:
    broker = make_broker()
    broker.heartbeat(WORKER, b"{}", [Q], first=True)
    mine, other = _leased(broker)
    kept, lost = mine[:2], mine[2:]  # the consumer acked ``lost``, the broker lost the acks
    assert reconcile.give_back(broker, f"{WORKER}/1", [Q], kept) == 3
    back = drain(broker, [Q], "w2#b/1")
    assert sorted(d.body for d in back) == sorted(d.body for d in lost)
    assert all(d.redeliveries == 0 for d in back)  # a death it never had is not charged
    assert broker.holding(f"{WORKER}/1", kept) == kept
    assert broker.holding(f"{WORKER}/2", other) == other
    # Asked again, there is nothing left to give back: the step is idempotent.
    assert reconcile.give_back(broker, f"{WORKER}/1", [Q], kept) == 0


def test_a_consumer_that_holds_everything_it_leases_gives_back_nothing(make_broker: MakeBroker) -> None:
    """The normal case: a reconcile that finds no lost ack changes nothing."""
    broker = make_broker()
    broker.heartbeat(WORKER, b"{}", [Q], first=True)
    mine, other = _leased(broker)
    assert reconcile.give_back(broker, f"{WORKER}/1", [Q], mine) == 0
    assert broker.holding(f"{WORKER}/1", mine) == mine
    assert drain(broker, [Q], "w2#b/1") == []
    # And one that finished everything (its acks written) has no lease left to give back.
    broker.ack(mine)
    assert reconcile.give_back(broker, f"{WORKER}/1", [Q]) == 0
    assert broker.holding(f"{WORKER}/2", other) == other


def test_the_leases_of_ended_pool_processes_go_back_and_the_live_ones_stay(make_broker: MakeBroker) -> None:
    """The supervisor's part: a dead pool process's release that the broker lost."""
    broker = make_broker()
    broker.heartbeat(WORKER, b"{}", [Q], first=True)
    mine, other = _leased(broker)
    assert reconcile.give_back_gone(broker, WORKER, {f"{WORKER}/2"}, [Q]) == 5
    back = drain(broker, [Q], "w2#b/1")
    assert sorted(d.body for d in back) == sorted(d.body for d in mine)
    assert all(d.redeliveries == 0 for d in back)
    assert broker.holding(f"{WORKER}/2", other) == other
    assert reconcile.give_back_gone(broker, WORKER, {f"{WORKER}/2"}, [Q]) == 0


def test_a_broker_that_cannot_lose_a_confirmed_write_has_no_lineage_and_redis_keeps_its_own(
        kind: str, make_broker: MakeBroker) -> None:
    """No reconcile is ever triggered on SQLite or memory; Redis answers the same lineage to
    every client while the server is the same (so nothing triggers one in the normal case)."""
    first, second = make_broker(), make_broker()
    if kind in ("memory", "sqlite"):
        assert first.lineage() is None
        return
    lineage = first.lineage()
    assert lineage and lineage == second.lineage() == first.lineage()


def test_a_redis_restart_changes_the_lineage() -> None:
    from celeriac import brokers
    from redis_server import start_redis

    server = start_redis()
    broker = brokers.from_url(server.url)
    try:
        before = broker.lineage()
        server.restart(0.0, hard=True)
        after = None
        for _ in range(50):  # redis-py reconnects on the next command that fails
            try:
                after = broker.lineage()
                break
            except Exception:
                time.sleep(0.1)
        assert after is not None and after != before
    finally:
        broker.close()
        server.stop()


def test_a_sharded_queue_is_reconciled_across_its_shards(redis_url: str) -> None:
    """A hot queue split over hash tags: the orphans of every shard go back, the held ones stay."""
    from celeriac import brokers

    broker = brokers.from_url(redis_url, transport_options={"queue_shards": {Q: 3}})
    assert isinstance(broker, RedisBroker)
    try:
        broker.heartbeat(WORKER, b"{}", [Q], first=True)
        for i in range(9):
            broker.enqueue(Q, f"s{i}".encode())
        mine = broker.fetch([Q], f"{WORKER}/1", 9, 0)
        assert len(mine) == 9 and len({broker._locate(d)[0] for d in mine}) == 3  # every shard
        assert reconcile.give_back(broker, f"{WORKER}/1", [Q], mine[::2]) == 4
        back = drain(broker, [Q], "w2#b/1")
        assert sorted(d.body for d in back) == sorted(d.body for d in mine[1::2])
        assert broker.holding(f"{WORKER}/1", mine[::2]) == mine[::2]
    finally:
        broker.close()
