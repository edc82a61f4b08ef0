"""Redis Cluster specifics, on the session's real cluster (3 masters, 3 replicas): one batch
routed to several masters, a slot that moves under a broker with an old slot map (MOVED, ASK),
and hot-queue sharding (also on one server, where it must behave the same)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from celeriac import backends, brokers
from celeriac.engines.redis.broker import RedisBroker
from celeriac.engines.redis.shards import shard_names
from redis_server import ClusterSetup


def _queues_on_distinct_masters(setup: ClusterSetup, count: int) -> list[str]:
    found: dict[int, str] = {}
    for i in itertools.count():
        name = f"spread{i}"
        found.setdefault(setup.master_of("celeriac:q:" + name), name)
        if len(found) == count or i > 200:
            break
    return list(found.values())


@pytest.fixture
def cluster_broker(cluster_url: str) -> Iterator[RedisBroker]:
    broker = brokers.from_url(cluster_url)
    assert isinstance(broker, RedisBroker)
    yield broker
    broker.close()


def test_one_batch_reaches_queues_on_three_masters(cluster_setup: ClusterSetup, cluster_url: str,
                                                   cluster_broker: RedisBroker) -> None:
    """Enqueue, fetch and finish (results, acks, events) of one batch spanning three masters."""
    queues = _queues_on_distinct_masters(cluster_setup, 3)
    assert len(queues) == 3, "three queue names should hash to three masters"
    cluster_broker.enqueue_many([(q, f"{q}-{i}".encode(), i % 3, 0.0, "") for q in queues for i in range(4)])
    got = cluster_broker.fetch(queues, "w1/1", 100, timeout=0)
    assert sorted(d.body for d in got) == sorted(f"{q}-{i}".encode() for q in queues for i in range(4))
    backend = backends.from_url(cluster_url)
    try:
        records = [(f"task-{i}", f"result-{i}".encode(), True) for i in range(len(got))]
        cluster_broker.finish(got, backend=backend, records=records, events=("events", b"e", 100))
        assert backend.read_many([t for t, _, _ in records]) == [r for _, r, _ in records]
        assert backend.wait_and_read("task-0", 1.0) == b"result-0"
    finally:
        backend.close()
    assert [s.unacked + sum(s.ready) for s in cluster_broker.stats(queues)] == [0, 0, 0]
    assert cluster_broker.log_last("events") is not None


def test_a_consumer_of_queues_on_several_masters_wakes_for_each(cluster_setup: ClusterSetup,
                                                                 cluster_broker: RedisBroker) -> None:
    """A blocking fetch over queues of different slots still sees a message on any of them."""
    queues = _queues_on_distinct_masters(cluster_setup, 3)
    for queue in queues:
        cluster_broker.fetch(queues, "w1/1", 1, timeout=0)  # groups exist
        producer = brokers.from_url(cluster_broker.url)
        try:
            producer.enqueue(queue, b"x")
        finally:
            producer.close()
        got = []
        for _ in range(20):
            got = cluster_broker.fetch(queues, "w1/1", 1, timeout=0.3)
            if got:
                break
        assert [d.queue for d in got] == [queue]
        cluster_broker.ack(got)


def _node(port: int, *command: object) -> object:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def _masters(setup: ClusterSetup) -> list[int]:
    """The master ports (replicas learn slot moves from them)."""
    return [p for p in setup.ports() if _node(p, "ROLE")[0] == "master"]  # type: ignore[index]


def _move_keys(source: int, target: int, slot: int) -> None:
    keys = _node(source, "CLUSTER", "GETKEYSINSLOT", slot, 1000)
    assert isinstance(keys, list)
    if keys:
        _node(source, "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)


def _set_slot(ports: list[int], slot: int, *how: str) -> None:
    for port in ports:
        client = redis.Redis(port=port)
        try:
            client.execute_command("CLUSTER", "SETSLOT", slot, *how)
        finally:
            client.close()


@pytest.fixture(params=[False, True], ids=["plain", "wait-replicas"])
def moving_broker(request: pytest.FixtureRequest, cluster_url: str) -> Iterator[RedisBroker]:
    """With wait_replicas the WAIT after each node's writes rides along the redirects (ASKING,
    the command and WAIT in the importing node's buffer; the refused node's WAIT not counted)."""
    options = {"transport_options": {"wait_replicas": 1, "wait_timeout": 2.0}} if request.param else {}
    broker = brokers.from_url(cluster_url, **options)
    assert isinstance(broker, RedisBroker)
    yield broker
    broker.close()


def test_a_moving_slot_is_followed_without_losing_or_doubling(cluster_setup: ClusterSetup,
                                                              moving_broker: RedisBroker) -> None:
    """ASK while the queue's slot migrates, MOVED after: the broker with the old slot map
    sends each command again where the cluster says, exactly once."""
    cluster_broker = moving_broker
    queue = "migrating"
    cluster_broker.enqueue(queue, b"before")  # the broker has read the slot map
    source = cluster_setup.master_of("celeriac:q:" + queue)
    target = next(p for p in (cluster_setup.master_of("celeriac:q:" + q)
                              for q in _queues_on_distinct_masters(cluster_setup, 3)) if p != source)
    slot = key_slot(b"celeriac:q:" + queue.encode())
    src_id, dst_id = str(_node(source, "CLUSTER", "MYID")), str(_node(target, "CLUSTER", "MYID"))
    _set_slot([target], slot, "IMPORTING", src_id)
    _set_slot([source], slot, "MIGRATING", dst_id)
    moved = False
    try:
        # Keys the source no longer (or never) holds are answered ASK: the priority-3 stream is new.
        cluster_broker.enqueue(queue, b"asked", priority=3)
        asking = redis.Redis(port=target)
        try:
            pipe = asking.pipeline(transaction=False)
            pipe.execute_command("ASKING")
            pipe.exists("{celeriac:q:migrating}:p3")
            assert pipe.execute()[1] == 1
        finally:
            asking.close()
        _move_keys(source, target, slot)
        _set_slot([source, target], slot, "NODE", dst_id)
        moved = True
        _set_slot([p for p in _masters(cluster_setup) if p not in (source, target)], slot, "NODE", dst_id)
        cluster_broker.enqueue(queue, b"after")  # MOVED, then resent to the new master
        cluster_broker.enqueue(queue, b"delayed", delay=60.0, key="k1")
        got = cluster_broker.fetch([queue], "w1/1", 10, timeout=0)
        assert sorted(d.body for d in got) == [b"after", b"asked", b"before"]
        cluster_broker.ack(got)
        assert [s.delayed for s in cluster_broker.stats([queue])] == [1]
        assert cluster_broker.fetch([queue], "w1/1", 10, timeout=0) == []
    finally:  # give the slot back, so the session's cluster keeps its layout
        if moved:
            _set_slot([source], slot, "IMPORTING", dst_id)
            _set_slot([target], slot, "MIGRATING", src_id)
            _move_keys(target, source, slot)
            _set_slot(_masters(cluster_setup), slot, "NODE", src_id)
        else:
            _move_keys(target, source, slot)
            _set_slot([source, target], slot, "STABLE")


def test_shards_of_a_hot_queue_land_on_three_masters(cluster_setup: ClusterSetup) -> None:
    names = shard_names("images", 3)
    assert names[0] == "images"
    assert len({cluster_setup.master_of("celeriac:q:" + n) for n in names}) == 3


@pytest.fixture(params=["redis", "cluster"])
def sharded(request: pytest.FixtureRequest) -> Iterator[RedisBroker]:
    url = request.getfixturevalue("cluster_url" if request.param == "cluster" else "redis_url")
    broker = brokers.from_url(url, transport_options={"queue_shards": {"images": 3}})
    assert isinstance(broker, RedisBroker)
    yield broker
    broker.close()


def _per_shard(broker: RedisBroker) -> list[int]:
    """Messages (ready or leased) in each shard, read from the shards' own streams."""
    counts = broker._run_many([("stats", [*broker.keys(n).streams, broker.keys(n).delayed, broker.keys(n).dead],
                                ["celeriac"]) for n in broker.shards("images")])
    return [sum(int(c) for c in shard[:11]) for shard in counts]


def test_a_sharded_queue_spreads_and_drains_every_shard(sharded: RedisBroker) -> None:
    sharded.enqueue_many([("images", b"%d" % i, 0, 0.0, "") for i in range(12)])
    for i in range(12, 15):
        sharded.enqueue("images", b"%d" % i)
    assert _per_shard(sharded) == [5, 5, 5]
    assert sum(sharded.stats(["images"])[0].ready) == 15
    got = sharded.fetch(["images"], "w1/1", 100, timeout=0)
    assert sorted(int(d.body) for d in got) == list(range(15))
    assert {d.queue for d in got} == {"images"}
    sharded.ack(got)
    assert _per_shard(sharded) == [0, 0, 0]


def test_a_sharded_queue_hands_out_the_highest_priority_of_any_shard_first(sharded: RedisBroker) -> None:
    for _ in range(4):  # the urgent messages land on other shards each round
        sharded.enqueue_many([("images", b"low", 0, 0.0, "") for _ in range(6)])
        sharded.enqueue("images", b"high", priority=9)
        sharded.enqueue("images", b"mid", priority=5)
        assert [d.body for d in sharded.fetch(["images"], "w1/1", 1, timeout=0)] == [b"high"]
        assert [d.body for d in sharded.fetch(["images"], "w1/1", 1, timeout=0)] == [b"mid"]
        rest = sharded.fetch(["images"], "w1/1", 100, timeout=0)
        assert len(rest) == 6
    # The blocking path (nothing ready when it starts) sees a message on any shard.
    assert sharded.fetch(["images"], "w1/1", 1, timeout=0.3) == []
    for _ in range(3):
        sharded.enqueue("images", b"late")
        got = []
        for _ in range(20):
            got = sharded.fetch(["images"], "w1/1", 1, timeout=0.3)
            if got:
                break
        assert [d.body for d in got] == [b"late"]


def test_a_dead_workers_sharded_tasks_come_back_from_every_shard(sharded: RedisBroker) -> None:
    sharded.enqueue_many([("images", b"%d" % i, 0, 0.0, "") for i in range(6)])
    sharded.heartbeat("w1", b"", ["images"], first=True)
    got = sharded.fetch(["images"], "w1/1", 100, timeout=0)
    assert len(got) == 6 and {d.tag.partition("@")[0] for d in got if "@" in d.tag} == {"1", "2"}
    sharded.heartbeat("w1", b"", ["images"], running=got[:2])
    assert sharded.holding("w1/1", got) == got
    assert sharded.evict("w1") == []
    back = sharded.fetch(["images"], "w2/1", 100, timeout=0)
    assert sorted(d.body for d in back) == sorted(d.body for d in got)
    charged = {d.body for d in got[:2]}
    assert {d.body for d in back if d.redeliveries == 1} == charged
    sharded.requeue(back[:3])
    sharded.dead_letter(back[3:4], "bad")
    sharded.ack(back[4:])
    assert sum(sharded.stats(["images"])[0].ready) == 3
    dead = sharded.dead_letters("images")
    assert [d.body for d in dead] == [back[3].body]
    assert sharded.retry_dead("images", [dead[0].id]) == 1
    assert sum(sharded.stats(["images"])[0].ready) == 4


def test_the_eviction_check_reads_every_master(cluster_setup: ClusterSetup, cluster_broker: RedisBroker) -> None:
    from celeriac.exceptions import ConfigurationError

    assert cluster_broker.check() == []
    port = _masters(cluster_setup)[-1]
    _node(port, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(ConfigurationError, match=f"allkeys-lru.*127.0.0.1:{port}"):
            cluster_broker.check()
    finally:
        _node(port, "CONFIG", "SET", "maxmemory-policy", "noeviction")
