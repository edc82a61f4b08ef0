"""Real workers on the session's Redis Cluster, consuming a queue split over three masters
(``queue_shards``) beside a plain one: every task runs once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from celeriac.testing import wait_until
from conftest import read_marks

SHARDS = "images=3"


@pytest.fixture
def broker_url(cluster_url: str) -> str:
    return cluster_url


@pytest.fixture
def sharded_app(app, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("CELERIAC_TEST_QUEUE_SHARDS", SHARDS)
    app.conf.broker_transport_options = {"queue_shards": {"images": 3}}
    app._reset_connections()
    yield app
    app.conf.broker_transport_options = None
    app._reset_connections()


def test_workers_drain_a_sharded_queue_and_a_plain_one_on_a_cluster(sharded_app, start_worker, marks) -> None:
    import coreapp

    results = [coreapp.sleep.apply_async((0.001, f"i{i}"), queue="images") for i in range(60)]
    results += [coreapp.sleep.apply_async((0.001, f"c{i}"), queue="celery") for i in range(20)]
    # Shards 1 and 2 (their own physical queues) got messages too, not only the queue's own tag.
    per_shard = [sum(sharded_app.broker.stats([n])[0].ready) for n in sharded_app.broker.shards("images")[1:]]
    assert len(per_shard) == 2 and all(n > 0 for n in per_shard)
    env = {"CELERIAC_TEST_QUEUE_SHARDS": SHARDS}
    workers = [start_worker("-c", "2", "-Q", "images,celery", env=env) for _ in range(2)]
    tags = {f"i{i}" for i in range(60)} | {f"c{i}" for i in range(20)}
    wait_until(lambda: tags <= {line.split()[0] for line in read_marks(marks, "finished")}, 60,
               message="every task ran")
    started = Counter(line.split()[0] for line in read_marks(marks, "started"))
    assert {t: n for t, n in started.items() if n > 1} == {}
    assert [r.get(timeout=10) for r in results[:3]] == ["i0", "i1", "i2"]
    assert sum(sum(s.ready) + s.unacked for s in sharded_app.broker.stats(["images", "celery"])) == 0
    for worker in workers:
        log = worker.log()
        assert "Traceback" not in log, log[-3000:]
