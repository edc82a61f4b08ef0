"""``-Q a,b`` serves both queues as kombu's round robin does (issue 10, finding 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import read_marks


@pytest.fixture(params=["redis", "sqlite"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path}/broker.db"


def test_a_worker_on_two_busy_queues_takes_from_both_in_turn(app, start_worker, marks):
    import coreapp

    results = [coreapp.record.apply_async((f"{queue}{i}",), queue=queue) for queue in "ab" for i in range(6)]
    start_worker("-Q", "a,b", "-c", "1", "--prefetch-multiplier", "1")
    for result in results:
        result.get(timeout=20)
    order = [line.split()[0][0] for line in read_marks(marks, "record")]
    assert sorted(order) == ["a"] * 6 + ["b"] * 6
    # Strict order would run a a a a a a b b b b b b; turns give both queues a share from the start.
    assert order[:4].count("b") >= 2, order
