"""Canvas on real workers: chains, groups, chords, callbacks and replace, on Redis and SQLite
(real ``celeriac worker`` processes started through the CLI) and on memory (the threads-pool
worker of celeriac.testing, in this process, since a memory broker lives in one process)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import chain, chord, group
from celeriac.result import GroupResult
from celeriac.testing import start_worker, wait_until, worker_process

APPS = str(Path(__file__).parent.parent / "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)

import canvasapp  # noqa: E402
from canvasapp import add, collect, fail, ledger, mul, on_error, on_error_id, replaced, spawn, sub, tsum  # noqa: E402


def lines(marks: Path, name: str) -> list[str]:
    path = marks / name
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(params=["redis", "sqlite", "memory"])
def canvas(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """canvasapp on one broker with one worker running; yields the marks directory."""
    yield from _canvas(request.param, request, tmp_path, monkeypatch)


@pytest.fixture(params=["redis", "sqlite"])
def canvas_processes(request: pytest.FixtureRequest, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``canvas`` with a real worker process only (a supervisor that can kill a task)."""
    yield from _canvas(request.param, request, tmp_path, monkeypatch)


def _canvas(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("CELERIAC_TEST_DIR", str(marks))
    if kind == "redis":
        url = str(request.getfixturevalue("redis_url"))
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'broker.db'}"
    else:
        url = f"memory://canvas-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    monkeypatch.setenv("CELERIAC_RESULT_BACKEND", url)
    app = canvasapp.app
    app.conf.broker_url = url
    app.conf.result_backend = url
    app._reset_connections()
    with contextlib.ExitStack() as stack:
        if kind == "memory":
            stack.enter_context(start_worker(app, concurrency=1))
        else:
            # One message leased at a time: a slow task and a quick one sent together go to the two
            # pool processes, as the fail-early test needs, however loaded the machine.
            proc = worker_process("canvasapp", "-c", "2", "--prefetch-multiplier", "1",
                                  "-n", f"canvas-{kind}@%h", broker_url=url,
                                  env={"CELERIAC_TEST_DIR": str(marks), "CELERIAC_RESULT_BACKEND": url},
                                  log_path=str(tmp_path / "worker.log"), pythonpath=[APPS])
            stack.callback(proc.kill)
            proc.wait_ready()
        yield marks
    app.close()


def test_signature_call_time_args_come_first(canvas: Path) -> None:
    """sub.s(2).delay(10) runs sub(10, 2), as Celery does."""
    assert sub.s(2).delay(10).get(timeout=20) == 8


def test_chain_passes_each_result_on_and_links_parents(canvas: Path) -> None:
    result = (add.s(2, 2) | mul.s(4) | sub.s(1)).delay()
    assert result.get(timeout=20) == 15
    assert result.parent is not None and result.parent.get(timeout=5) == 16
    assert result.parent.parent is not None and result.parent.parent.get(timeout=5) == 4
    immutable = chain(add.s(1, 1), add.si(5, 5)).apply_async()
    assert immutable.get(timeout=20) == 10


def test_error_in_a_chain_stops_it_and_calls_link_error(canvas: Path) -> None:
    result = chain(add.s(1, 1), fail.s(), collect.s("after-fail")).apply_async(
        link_error=[on_error.s(), on_error_id.s()])
    assert result.parent is not None
    with pytest.raises(ValueError):
        result.parent.get(timeout=20)
    failed_id = result.parent.id
    wait_until(lambda: lines(canvas, "errors") and lines(canvas, "errors-id"), timeout=20)
    assert lines(canvas, "errors")[0].startswith(f"{failed_id} ValueError")
    assert lines(canvas, "errors-id") == [failed_id]
    time.sleep(0.5)
    assert lines(canvas, "collect") == []  # the step after the failure never ran
    assert result.state == "PENDING"


def test_link_runs_on_success(canvas: Path) -> None:
    add.apply_async((2, 3), link=collect.s("linked"))
    wait_until(lambda: lines(canvas, "collect"), timeout=20)
    assert lines(canvas, "collect") == ["linked 5"]


def test_group_result_get_save_restore(canvas: Path) -> None:
    result = group(add.s(i, i) for i in range(6))()
    assert result.get(timeout=20) == [0, 2, 4, 6, 8, 10]
    assert result.ready() and result.successful() and result.completed_count() == 6
    result.save()
    restored = GroupResult.restore(result.id, app=canvasapp.app)
    assert restored is not None and restored.join(timeout=5) == [0, 2, 4, 6, 8, 10]


def test_chord_calls_the_body_once_with_every_result(canvas: Path) -> None:
    result = chord(add.s(i, i) for i in range(8))(ledger.s("sum"))
    assert result.get(timeout=30) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert isinstance(result.parent, GroupResult) and result.parent.completed_count() == 8
    upgraded = (group(mul.s(i, 2) for i in range(4)) | tsum.s()).delay()
    assert upgraded.get(timeout=30) == 12
    time.sleep(0.5)
    assert len(lines(canvas, "ledger")) == 1


def test_chord_with_a_failing_header_task_fails_the_body_with_chord_error(canvas: Path) -> None:
    body = ledger.s("never").on_error(on_error.s())
    result = chord([add.s(1, 1), fail.s(7)], body).apply_async()
    with pytest.raises(Exception) as caught:
        result.get(timeout=30)
    assert type(caught.value).__name__ == "ChordError"
    wait_until(lambda: lines(canvas, "errors"), timeout=20)
    assert lines(canvas, "errors")[0].startswith(f"{result.id} ChordError")
    assert lines(canvas, "ledger") == []


def test_map_starmap_chunks(canvas: Path) -> None:
    assert add.starmap([(1, 2), (3, 4)]).delay().get(timeout=20) == [3, 7]
    assert tsum.map([[1, 2], [3]]).delay().get(timeout=20) == [3, 3]
    assert add.chunks([(i, i) for i in range(5)], 2)().get(timeout=20) == [[0, 2], [4, 6], [8]]


def test_replace_hands_over_the_id_and_the_chain(canvas: Path) -> None:
    result = (replaced.s(4) | add.s(1)).delay()
    assert result.get(timeout=30) == 51
    assert result.parent is not None and result.parent.get(timeout=5) == 50


def test_children_are_the_tasks_sent_while_running(canvas: Path) -> None:
    result = spawn.delay(3)
    ids = result.get(timeout=20)
    assert [child.id for child in result.children] == ids


def test_a_failing_header_task_fails_the_chord_at_once_and_only_once(canvas: Path) -> None:
    """As Celery: the body fails with ChordError as soon as one header task fails, without
    waiting for a slow one; when the slow one finishes later, neither the body nor its errback
    runs again."""
    from canvasapp import slow

    two_processes = not str(canvasapp.app.conf.broker_url).startswith("memory")
    body = ledger.s("early").on_error(on_error.s())
    result = chord([slow.s(1, 6), fail.s(7)], body).apply_async()
    slow_result = result.parent[0]
    with pytest.raises(Exception) as caught:
        result.get(timeout=30)
    assert type(caught.value).__name__ == "ChordError"
    assert "failed on purpose" in str(caught.value)
    if two_processes:  # one pool process runs the slow task while the other fails the chord
        assert not slow_result.ready()
    assert slow_result.get(timeout=30) == 1
    time.sleep(1.0)  # room for a wrong second join to run
    assert lines(canvas, "ledger") == []
    assert len(lines(canvas, "errors")) == 1


def test_a_revoked_header_task_fails_the_chord_instead_of_hanging_it(canvas: Path) -> None:
    """A header task revoked before it runs never finishes: it counts as failed, so the body gets
    ChordError now rather than waiting until result_expires."""
    import uuid

    revoked_id = str(uuid.uuid4())
    # Until the worker replies, so its pool has the revocation before the header task arrives (a
    # command sent as the worker starts can land before its control reader does: sent again).
    wait_until(lambda: canvasapp.app.control.revoke(revoked_id, reply=True, timeout=2), timeout=30)
    result = chord([add.s(1, 1), add.s(2, 2).set(task_id=revoked_id)], ledger.s("revoked")).apply_async()
    with pytest.raises(Exception) as caught:
        result.get(timeout=30)
    assert type(caught.value).__name__ == "ChordError"
    assert revoked_id in str(caught.value)
    assert lines(canvas, "ledger") == []


def test_a_dead_lettered_header_task_fails_the_chord(canvas: Path) -> None:
    """A header task no worker knows is dead-lettered: it counts as failed (NotRegistered)."""
    result = chord([add.s(1, 1), canvasapp.app.signature("canvasapp.no_such_task", (1,))],
                   ledger.s("dead")).apply_async()
    with pytest.raises(Exception) as caught:
        result.get(timeout=30)
    assert type(caught.value).__name__ == "ChordError"
    assert "NotRegistered" in str(caught.value) or "no_such_task" in str(caught.value)
    assert lines(canvas, "ledger") == []


def test_children_include_links_and_the_chains_next_step(canvas: Path) -> None:
    """As Celery's: a finished task's children are its links and the chain's next step."""
    result = (add.s(2, 2) | mul.s(4) | sub.s(1)).delay()
    assert result.get(timeout=20) == 15
    middle = result.parent
    assert middle is not None and middle.parent is not None
    # A step's result is stored by its worker's flusher, possibly after the next step finished.
    assert middle.parent.get(timeout=5) == 4 and middle.get(timeout=5) == 16
    assert [c.id for c in middle.parent.children] == [middle.id]
    assert [c.id for c in middle.children] == [result.id]
    assert result.children == []
    linked = add.apply_async((2, 3), link=[collect.s("child-a"), collect.s("child-b")])
    assert linked.get(timeout=20) == 5
    children = linked.children
    assert len(children) == 2
    assert [c.get(timeout=20) for c in children] == [5, 5]
    assert [c.name for c in children] == ["canvasapp.collect"] * 2


def test_collect_iterdeps_get_leaf_and_maybe_throw(canvas: Path) -> None:
    """Celery's graph walks over children: a task that fans out is followed to its leaves."""
    from celeriac.exceptions import IncompleteStream
    from celeriac.result import AsyncResult

    root = spawn.delay(3)
    ids = root.get(timeout=20)
    collected = list(root.collect(timeout=20))
    assert [(r.id, v) for r, v in collected] == [(root.id, ids), *[(i, n + n) for n, i in enumerate(ids)]]
    assert [(p.id if p else None, r.id) for p, r in root.iterdeps()] == [(None, root.id)] + [(root.id, i) for i in ids]
    assert root.get_leaf() == 4
    assert root.exists() and not AsyncResult("never-sent", app=canvasapp.app).exists()
    with pytest.raises(IncompleteStream):
        list(AsyncResult("never-sent", app=canvasapp.app).iterdeps())
    failed = fail.delay(1)
    with pytest.raises(ValueError):
        failed.get(timeout=20)
    with pytest.raises(ValueError):
        failed.maybe_throw()
    seen: list[tuple[str, object]] = []
    assert isinstance(failed.maybe_throw(propagate=False, callback=lambda i, v: seen.append((i, v))), str)
    assert seen and seen[0][0] == failed.id
    both = GroupResult("g", [root, failed], app=canvasapp.app)
    with pytest.raises(ValueError):
        both.maybe_throw()
    assert both.backend is canvasapp.app.backend and both.parent is None


def test_a_header_task_the_worker_kills_fails_the_chord(canvas_processes: Path) -> None:
    """A header task killed at its hard time limit, or terminated by revoke(terminate=True), is
    recorded by the supervisor, not the task: it still counts into its chord as failed."""
    from canvasapp import slow

    canvas = canvas_processes
    limited = chord([add.s(1, 1), slow.s(2, 30).set(time_limit=1)], ledger.s("limit")).apply_async()
    with pytest.raises(Exception) as caught:
        limited.get(timeout=30)
    assert type(caught.value).__name__ == "ChordError" and "TimeLimitExceeded" in str(caught.value)
    terminated = chord([slow.s(3, 30)], ledger.s("terminated")).apply_async()
    member = terminated.parent[0]
    wait_until(lambda: any(line.startswith("3 ") for line in lines(canvas, "slow-started")), timeout=20)
    canvasapp.app.control.revoke(member.id, terminate=True, signal="SIGKILL")
    with pytest.raises(Exception) as caught:
        terminated.get(timeout=30)
    assert type(caught.value).__name__ == "ChordError" and member.id in str(caught.value)
    assert lines(canvas, "ledger") == []
