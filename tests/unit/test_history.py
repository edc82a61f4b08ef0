"""The task history: indexed queries, retention, and resuming from the stored log position."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from celeriac import events
from celeriac.brokers.memory import MemoryBroker
from celeriac.monitor.history import History, TaskQuery
from celeriac.monitor.indexer import Indexer
from celeriac.monitor.reader import EventReader
from celeriac.monitor.state import TaskRecord


def record(n: int, **fields: object) -> TaskRecord:
    base: dict[str, object] = {"uuid": f"{n:04d}-task", "name": "add" if n % 2 else "mul",
                               "state": "SUCCESS" if n % 3 else "FAILURE", "queue": "q", "worker": f"w{n % 2}@h",
                               "received": 1000.0 + n, "started": 1000.5 + n, "timestamp": 1001.0 + n,
                               "args": f"({n}, 'needle-{n}')", "kwargs": "{}"}
    base.update(fields)
    return TaskRecord.from_dict(base)


@pytest.fixture
def history(tmp_path: Path) -> History:
    h = History(str(tmp_path / "history.db"), max_tasks=None)
    h.save([record(n) for n in range(30)], "5-0")
    return h


def ids(records: list[TaskRecord]) -> list[int]:
    return [int(r.uuid[:4]) for r in records]


def test_newest_first_by_default_and_paged(history: History):
    assert ids(history.query(TaskQuery(limit=3))) == [29, 28, 27]
    assert ids(history.query(TaskQuery(limit=3, offset=3))) == [26, 25, 24]
    assert len(history.query(TaskQuery(limit=None))) == 30


def test_filters_combine(history: History):
    got = history.query(TaskQuery(state="FAILURE", name="mul", worker="w0@h", limit=None))
    assert ids(got) == [24, 18, 12, 6, 0]
    assert history.query(TaskQuery(queue="other")) == []
    assert ids(history.query(TaskQuery(received_from=1010, received_to=1012, descending=False))) == [10, 11, 12]


def test_sorts(history: History):
    by_name = history.query(TaskQuery(sort="name", descending=False, limit=None))
    assert [r.name for r in by_name] == ["add"] * 15 + ["mul"] * 15
    assert ids(by_name)[:2] == [1, 3]  # ties: by last event time in the same direction
    assert ids(history.query(TaskQuery(sort="started", limit=2))) == [29, 28]
    with pytest.raises(ValueError, match="cannot sort by 'bogus'"):
        history.query(TaskQuery(sort="bogus"))


def test_search_by_id_prefix_and_argument_text(history: History):
    assert ids(history.query(TaskQuery(search="0017"))) == [17]
    assert ids(history.query(TaskQuery(search="needle-2"))) == [29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 2]
    assert ids(history.query(TaskQuery(search="NEEDLE-13"))) == [13]  # case does not matter
    assert history.query(TaskQuery(search='"; drop table tasks; --')) == []
    assert ids(history.query(TaskQuery(search="needle-13\x00"))) == [13]  # a NUL is not FTS5 syntax
    assert history.query(TaskQuery(search="\x00", sort="name")) != []  # nothing left to search for
    assert history.count() == 30


def test_an_update_keeps_one_row_and_its_search_text(history: History):
    history.save([record(5, state="RETRY", args=None, timestamp=5000.0)])
    assert history.count() == 30
    got = history.get("0005-task")
    assert got is not None and got.state == "RETRY"
    assert ids(history.query(TaskQuery(search="needle-5"))) == [5]


def test_retention_by_count_and_by_age(tmp_path: Path):
    h = History(str(tmp_path / "h.db"), max_tasks=10, max_age=100.0)
    h.save([record(n) for n in range(30)])
    assert h.prune(now=0.0) == 20
    assert ids(h.query(TaskQuery(limit=None))) == list(range(29, 19, -1))
    assert h.query(TaskQuery(search="needle-3")) == []  # the text index lost them too
    assert h.prune(now=1001.0 + 25 + 100) == 5  # last event before 1026 is too old
    assert ids(h.query(TaskQuery(limit=None))) == [29, 28, 27, 26, 25]


def test_names_workers_and_the_cursor_survive_reopening(history: History):
    again = History(history.path)
    assert again.names() == ["add", "mul"] and again.workers() == ["w0@h", "w1@h"]
    assert again.cursor == "5-0"


def _emit(broker: MemoryBroker, *evs: bytes) -> None:
    broker.log_append(events.EVENT_LOG, events.batch(list(evs)), 1000)


def test_indexer_resumes_after_a_restart_and_sees_what_ran_meanwhile(tmp_path: Path):
    broker = MemoryBroker(f"memory://history-{uuid.uuid4().hex}")
    path = str(tmp_path / "h.db")
    _emit(broker, events.event("task-received", uuid="a", name="t", args="(1,)", hostname="w@h", timestamp=1.0),
          events.event("task-started", uuid="a", hostname="w@h", timestamp=2.0))
    first = Indexer(broker, History(path))
    reader = EventReader(broker, first.history.cursor)
    assert first.step(reader) == 2
    # The dashboard is down while "a" finishes and "b" runs.
    _emit(broker, events.event("task-succeeded", uuid="a", runtime=1.0, result="2", hostname="w@h", timestamp=3.0))
    _emit(broker, events.event("task-received", uuid="b", name="t", args="('x',)", hostname="w@h", timestamp=4.0))
    second = Indexer(broker, History(path))  # a new process: an empty fold, the stored cursor
    assert second.step(EventReader(broker, second.history.cursor)) == 2
    a, b = second.history.get("a"), second.history.get("b")
    assert a is not None and (a.state, a.received, a.started, a.succeeded, a.result) == ("SUCCESS", 1.0, 2.0, 3.0, "2")
    assert b is not None and b.state == "RECEIVED"
    assert ids_of(second.history.query(TaskQuery(search="'x'"))) == ["b"]


def ids_of(records: list[TaskRecord]) -> list[str]:
    return [r.uuid for r in records]


def test_indexer_thread_tells_listeners_and_tracks_workers(tmp_path: Path):
    broker = MemoryBroker(f"memory://history-{uuid.uuid4().hex}")
    seen: list[str] = []
    indexer = Indexer(broker, History(str(tmp_path / "h.db")), wait=0.05)
    indexer.listeners.append(lambda batch: seen.extend(e["type"] for e in batch))
    _emit(broker, events.event("worker-online", hostname="w@h"), events.event("task-sent", uuid="c", name="t"))
    indexer.start()
    try:
        assert indexer.caught_up.wait(5)
    finally:
        indexer.stop()
    assert seen == ["worker-online", "task-sent"]
    assert indexer.workers.workers["w@h"].online
    got = indexer.history.get("c")
    assert got is not None and got.state == "PENDING"


def test_short_id_prefix_and_search_with_filters_and_other_sorts(history: History):
    assert len(history.query(TaskQuery(search="00", limit=None))) == 30
    assert ids(history.query(TaskQuery(search="002", limit=None))) == [*range(29, 19, -1), 2]  # a substring
    got = history.query(TaskQuery(search="needle-2", state="FAILURE", sort="received", descending=False))
    assert ids(got) == [21, 24, 27]
    assert ids(history.query(TaskQuery(search="needle-2", state="FAILURE"))) == [27, 24, 21]


def test_a_task_first_seen_without_arguments_becomes_searchable_when_they_arrive(tmp_path: Path):
    h = History(str(tmp_path / "h.db"))
    h.save([TaskRecord("late-args", state="PROGRESS", timestamp=1.0)])
    assert ids_of(h.query(TaskQuery(search="late-a"))) == ["late-args"]
    h.save([TaskRecord("late-args", state="STARTED", args="('findme',)", timestamp=2.0)])
    assert ids_of(h.query(TaskQuery(search="findme"))) == ["late-args"]
    assert ids_of(h.query(TaskQuery(search="late-a"))) == ["late-args"]


def test_indexer_reads_a_reset_log_from_its_start(tmp_path: Path):
    """A new or flushed broker gives out log ids from the start again, all before the stored one."""
    broker = MemoryBroker(f"memory://history-{uuid.uuid4().hex}")
    history = History(str(tmp_path / "h.db"))
    for n in range(3):
        _emit(broker, events.event("task-received", uuid=f"old{n}", timestamp=1.0))
    first = Indexer(broker, history)
    reader = EventReader(broker, first.start_position())
    assert first.step(reader) == 3 and history.cursor is not None
    assert Indexer(broker, history).start_position() == history.cursor  # nothing new: resume
    fresh = MemoryBroker(f"memory://history-{uuid.uuid4().hex}")  # its log ids start again at 1
    _emit(fresh, events.event("task-received", uuid="new", timestamp=2.0))
    again = Indexer(fresh, history)
    assert again.step(EventReader(fresh, again.start_position())) == 1
    assert history.get("new") is not None
