"""``wait_replicas`` on a real Redis Cluster (three masters, a replica each): replication is per
master, so the enqueue's ``WAIT`` must reach every master the enqueue wrote to, and no other.
With one master's replica killed, a send to a queue on that master raises ``NotReplicated``
within ``wait_timeout``, and sends to queues on the other masters still return."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celery
from celeriac.exceptions import NotReplicated
from redis_server import ClusterSetup, _info, start_cluster_setup

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSetup]:
    setup = start_cluster_setup(node_timeout_ms=1000)
    yield setup
    setup.stop()


@pytest.fixture(scope="module")
def queues(cluster: ClusterSetup) -> dict[int, str]:
    return _queues_by_master(cluster)


def _queues_by_master(cluster: ClusterSetup) -> dict[int, str]:
    """A queue name on each master, by the master's port."""
    out: dict[int, str] = {}
    for i in range(200):
        if len(out) == 3:
            break
        name = f"dq{i}"
        out.setdefault(cluster.master_of("{celeriac:q:" + name + "}"), name)
    assert len(out) == 3, out
    return out


@pytest.fixture
def app(cluster: ClusterSetup) -> Iterator[Any]:
    # Every node as a seed: the tests here fail masters over and kill replicas, and a new client
    # must still find the cluster when the first seeds are gone.
    seeds = ",".join(f"127.0.0.1:{s.port}" for s in cluster.servers)
    app = Celery("durable-cluster", broker=f"rediscluster://{seeds}/0")
    app.conf.broker_transport_options = {"wait_replicas": 1, "wait_timeout": TIMEOUT}
    app.conf.task_publish_retry = False
    yield app
    app.close()


def _ready(app: Any, queue: str) -> int:
    return int(app.broker.stats([queue])[0].ready_total)


def test_sends_to_every_master_return_once_replicated(app: Any, queues: dict[int, str]) -> None:
    for queue in queues.values():
        app.send_task("d.t", [1], queue=queue)
        app.send_task("d.t", [2], queue=queue, countdown=30)  # the delayed path, a script
    for queue in queues.values():
        app.send_many("d.t", [((i,), {}) for i in range(3)], queue=queue)
    # One batch over the three masters: one WAIT each, in that master's own buffer.
    app.broker.enqueue_many([(q, b"{}", 0, 0.0, "") for q in queues.values()])
    assert [_ready(app, q) for q in queues.values()] == [5, 5, 5]


def test_a_send_redirected_after_a_manual_failover_waits_on_the_new_master(
        app: Any, cluster: ClusterSetup, queues: dict[int, str]) -> None:
    """The wire's slot map is stale after the failover: the send is answered MOVED by the old
    master (a replica now, where WAIT is an error) and runs on the new one, whose WAIT counts."""
    import redis

    port, queue = next(iter(queues.items()))
    before = _ready(app, queue)
    app.send_task("d.t", [1], queue=queue)  # the wire has read the slot map
    replica = next(s.port for s in cluster.servers
                   if _info(s.port, "replication").get("master_port") == str(port))
    client = redis.Redis(port=replica, socket_timeout=5)
    try:
        client.execute_command("CLUSTER", "FAILOVER")  # type: ignore[no-untyped-call]
    finally:
        client.close()
    key = "{celeriac:q:" + queue + "}"
    assert cluster.wait_promoted(port, key, timeout=20) == replica
    cluster.wait_settled(key, timeout=20)
    app.send_task("d.t", [2], queue=queue)
    app.broker.enqueue_many([(q, b"{}", 0, 0.0, "") for q in queues.values()])
    assert _ready(app, queue) == before + 3
    queues.clear()  # the masters moved: the next test looks them up again
    queues.update(_queues_by_master(cluster))


def test_a_masters_replica_killed_only_sends_to_that_master_raise_not_replicated(
        app: Any, cluster: ClusterSetup, queues: dict[int, str]) -> None:
    """Runs last in the module: it leaves one master without its replica."""
    replica = next(s for s in cluster.servers
                   if _info(s.port, "replication").get("role") == "slave")
    master = int(_info(replica.port, "replication")["master_port"])
    replica.kill()
    orphan, others = queues[master], [q for p, q in queues.items() if p != master]
    before = _ready(app, orphan)
    began = time.monotonic()
    with pytest.raises(NotReplicated, match=r"0 of the 1 replica"):
        app.send_task("d.t", [1], queue=orphan)
    took = time.monotonic() - began
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 2.5, took
    assert _ready(app, orphan) == before + 1  # written on the master all the same
    for queue in others:  # their masters' replicas confirm: no error, and no wait for the dead one
        began = time.monotonic()
        app.send_task("d.t", [1], queue=queue)
        assert time.monotonic() - began < TIMEOUT * 0.9
    with pytest.raises(NotReplicated):
        app.send_task("d.t", [1], queue=orphan, countdown=30)
    app.broker.enqueue_many([(q, b"{}", 0, 0.0, "") for q in others])
    with pytest.raises(NotReplicated, match="the 3 tasks"):  # one master of three unconfirmed
        app.broker.enqueue_many([(q, b"{}", 0, 0.0, "") for q in [*others, orphan]])
