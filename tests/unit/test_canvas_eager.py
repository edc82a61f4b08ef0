"""Canvas in eager mode (task_always_eager and .apply()): the same results as on a worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celery, chain, chord, group
from celeriac.result import GroupResult


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("eager-canvas", broker="memory://eager-canvas", backend="memory://eager-canvas")
    app.conf.task_always_eager = True
    yield app
    app.close()


@pytest.fixture
def tasks(app: Celery) -> dict[str, Any]:
    calls: list[Any] = []

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task
    def tsum(xs: list[int]) -> int:
        calls.append(("tsum", xs))
        return sum(xs)

    @app.task
    def fail(*args: Any) -> None:
        raise ValueError("no")

    @app.task
    def on_error(request: Any, exc: BaseException, traceback: Any) -> None:
        calls.append(("error", request.id, type(exc).__name__))

    @app.task
    def note(value: Any) -> None:
        calls.append(("note", value))

    @app.task(bind=True)
    def replaced(self: Any, x: int) -> Any:
        return self.replace(add.s(x, 1) | mul.s(10))

    return {"add": add, "mul": mul, "tsum": tsum, "fail": fail, "on_error": on_error, "note": note,
            "replaced": replaced, "calls": calls}


def test_chain_group_chord_eagerly(app: Celery, tasks: dict[str, Any]) -> None:
    add, mul, tsum = tasks["add"], tasks["mul"], tasks["tsum"]
    assert tasks["add"].s(2).delay(10).get() == 12
    result = (add.s(2, 2) | mul.s(4)).delay()
    assert result.get() == 16 and result.parent.get() == 4
    g = group(add.s(i, i) for i in range(4)).delay()
    assert isinstance(g, GroupResult) and g.get() == [0, 2, 4, 6]
    assert chord(add.s(i, i) for i in range(4))(tsum.s()).get() == 12
    assert (group(add.s(i, 1) for i in range(3)) | tsum.s()).delay().get() == 6
    assert chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s()).delay().get() == 7


def test_link_and_link_error_eagerly(app: Celery, tasks: dict[str, Any]) -> None:
    tasks["add"].apply_async((1, 2), link=tasks["note"].s())
    assert ("note", 3) in tasks["calls"]
    app.conf.task_eager_propagates = False
    result = chain(tasks["add"].s(1, 1), tasks["fail"].s(), tasks["note"].s()).apply_async(
        link_error=tasks["on_error"].s())
    assert result.failed()
    assert [c for c in tasks["calls"] if c[0] == "error"] == [("error", result.id, "ValueError")]
    assert ("note", None) not in tasks["calls"]


def test_chord_header_failure_fails_the_body_eagerly(app: Celery, tasks: dict[str, Any]) -> None:
    app.conf.task_eager_propagates = False
    body = tasks["tsum"].s().on_error(tasks["on_error"].s())
    result = chord([tasks["add"].s(1, 1), tasks["fail"].s()], body).apply_async()
    assert result.failed() and type(result.result).__name__ == "ChordError"
    assert [c[0] for c in tasks["calls"]] == ["error"]


def test_apply_runs_canvas_without_always_eager(app: Celery, tasks: dict[str, Any]) -> None:
    app.conf.task_always_eager = False
    assert (tasks["add"].s(1, 1) | tasks["mul"].s(3)).apply().get() == 6
    assert chord([tasks["add"].s(1, 1)], tasks["tsum"].s()).apply().get() == 2


def test_map_starmap_chunks_and_replace_eagerly(app: Celery, tasks: dict[str, Any]) -> None:
    add = tasks["add"]
    assert add.starmap([(1, 2), (3, 4)]).delay().get() == [3, 7]
    assert add.chunks([(i, i) for i in range(3)], 2)().get() == [[0, 2], [4]]
    assert tasks["replaced"].delay(4).get() == 50
