"""The monitor: following the event log and folding events into task and worker state."""

from __future__ import annotations

import uuid
from typing import Any

from celeriac import events
from celeriac.brokers.memory import MemoryBroker
from celeriac.monitor import EventReader, TaskRecord, TaskStates, WorkerStates, follow
from celeriac.monitor.reader import FROM_NOW, FROM_START


def ev(kind: str, uuid: str = "t1", ts: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "uuid": uuid, "timestamp": ts, **fields}


# -- folding -----------------------------------------------------------------------------------------
def test_a_lifecycle_folds_into_flowers_fields():
    fold = TaskStates()
    fold.apply(ev("task-sent", ts=1.0, name="add", args="(1, 2)", kwargs="{}", queue="q", hostname="client"))
    fold.apply(ev("task-received", ts=2.0, name="add", hostname="w@h", retries=0))
    fold.apply(ev("task-started", ts=3.0, hostname="w@h"))
    task = fold.apply(ev("task-succeeded", ts=4.5, hostname="w@h", runtime=1.5, result="3"))
    assert task is not None
    assert (task.state, task.sent, task.received, task.started, task.succeeded) == ("SUCCESS", 1.0, 2.0, 3.0, 4.5)
    assert (task.name, task.args, task.worker, task.runtime, task.result, task.timestamp) == \
        ("add", "(1, 2)", "w@h", 1.5, "3", 4.5)


def test_progress_read_before_started_keeps_the_newer_state():
    """update_state writes task-progress at once while the pool process batches task-started."""
    fold = TaskStates()
    fold.apply(ev("task-received", ts=1.0))
    fold.apply(ev("task-progress", ts=3.0, state="PROGRESS", meta={"percent": 40}))
    task = fold.apply(ev("task-started", ts=2.0))
    assert task is not None and task.state == "PROGRESS" and task.started == 2.0
    assert task.progress == {"percent": 40}


def test_task_sent_from_a_clock_running_ahead_never_undoes_what_a_worker_said():
    """The caller's clock is not the worker's: its task-sent can carry a later time than the
    worker's task-started, and be read after it. The task is started, not pending."""
    fold = TaskStates()
    fold.apply(ev("task-received", ts=10.0, hostname="w@h"))
    fold.apply(ev("task-started", ts=10.1, hostname="w@h"))
    task = fold.apply(ev("task-sent", ts=12.0, name="sleep", args="(30,)", hostname="client"))
    assert task is not None and task.state == "STARTED" and task.worker == "w@h"
    assert (task.sent, task.name, task.args, task.client) == (12.0, "sleep", "(30,)", "client")
    assert task.wait == 0.0  # never negative, whatever the clocks say


def test_a_final_state_gives_way_only_to_a_final_one():
    fold = TaskStates()
    fold.apply(ev("task-succeeded", ts=5.0))
    task = fold.apply(ev("task-started", ts=9.0))  # even newer: a final state stays
    assert task is not None and task.state == "SUCCESS" and task.started == 9.0
    task = fold.apply(ev("task-revoked", ts=10.0))
    assert task is not None and task.state == "REVOKED"


def test_a_final_state_from_a_clock_running_behind_still_ends_the_task():
    """Retried on one machine, finished on another whose clock is a little behind: the task is
    over, not waiting for a retry for good."""
    fold = TaskStates()
    fold.apply(ev("task-retried", ts=20.0, hostname="a@h", exception="ValueError('x')"))
    task = fold.apply(ev("task-succeeded", ts=19.5, hostname="b@h", result="1"))
    assert task is not None and task.state == "SUCCESS" and task.finished == 19.5


def test_a_retried_task_runs_again_and_counts_its_retries():
    fold = TaskStates()
    fold.apply(ev("task-received", ts=1.0, retries=0))
    fold.apply(ev("task-retried", ts=2.0, exception="ValueError('x')"))
    fold.apply(ev("task-received", ts=3.0, retries=1))
    task = fold.apply(ev("task-succeeded", ts=4.0))
    assert task is not None and task.state == "SUCCESS" and task.retries == 1 and task.retried == 2.0
    assert fold.counts["task-retried"] == 1


def test_the_timeline_tells_retries_their_reasons_and_progress():
    fold = TaskStates()
    fold.apply(ev("task-received", ts=1.0, hostname="w@h"))
    fold.apply(ev("task-retried", ts=2.0, exception="ConnectionError('down')", countdown=60))
    fold.apply(ev("task-progress", ts=3.0, state="PROGRESS", meta={"progress": 40, "message": "drawing"}))
    task = fold.apply(ev("task-succeeded", ts=4.0, runtime=0.25))
    assert task is not None
    assert task.timeline == [[1.0, "task-received", "w@h"],
                             [2.0, "task-retried", "ConnectionError('down'); again in 60 s"],
                             [3.0, "task-progress", "40% drawing"], [4.0, "task-succeeded", "in 0.250 s"]]


def test_the_timeline_is_bounded_and_drops_progress_first():
    from celeriac.monitor.state import MAX_TIMELINE

    fold = TaskStates()
    fold.apply(ev("task-received", ts=0.0))
    fold.apply(ev("task-retried", ts=0.5, exception="E()"))
    for n in range(MAX_TIMELINE * 2):
        fold.apply(ev("task-progress", ts=1.0 + n, meta={"progress": n}))
    task = fold.apply(ev("task-succeeded", ts=1000.0))
    assert task is not None and len(task.timeline) == MAX_TIMELINE
    kinds = [entry[1] for entry in task.timeline]
    assert kinds[:2] == ["task-received", "task-retried"] and kinds[-1] == "task-succeeded"
    assert task.timeline[-2][2] == f"{MAX_TIMELINE * 2 - 1}%"  # the newest progress kept


def test_a_dead_lettered_task_is_a_failure_with_its_reason():
    task = TaskStates().apply(ev("task-dead-lettered", ts=1.0, reason="NotRegistered: 'x'"))
    assert task is not None and task.state == "FAILURE" and task.dead_lettered == 1.0
    assert task.reason == "NotRegistered: 'x'"


def test_the_fold_is_bounded_and_asks_load_for_a_task_it_forgot():
    stored = {"old": TaskRecord("old", name="kept", state="STARTED", state_time=1.0)}
    fold = TaskStates(keep=2, load=stored.get)
    for n in range(5):
        fold.apply(ev("task-received", uuid=f"t{n}", ts=float(n)))
    assert [t.uuid for t in fold.recent()] == ["t4", "t3"]
    task = fold.apply(ev("task-succeeded", uuid="old", ts=2.0))
    assert task is not None and task.name == "kept" and task.state == "SUCCESS"


def test_worker_and_unknown_events_change_no_task():
    fold = TaskStates()
    assert fold.apply({"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 1.0}) is None
    assert fold.apply({"type": "task-received"}) is None  # no uuid
    assert len(fold) == 0 and fold.counts["worker-heartbeat"] == 1


def test_record_round_trips_through_a_dict():
    record = TaskRecord("x", name="n", state="FAILURE", exception="E()", progress={"a": 1},
                        timeline=[[1.0, "task-failed", "E()"]])
    assert TaskRecord.from_dict({**record.as_dict(), "unknown": 1}) == record


def test_workers_go_offline_and_ignore_late_events():
    workers = WorkerStates()
    workers.apply({"type": "worker-online", "hostname": "w@h", "timestamp": 100.0, "pid": 7})
    record = workers.apply({"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 101.0, "active": 2})
    assert record is not None and record.alive(now=102.0) and record.info["active"] == 2
    assert not record.alive(now=200.0)
    workers.apply({"type": "worker-offline", "hostname": "w@h", "timestamp": 103.0})
    workers.apply({"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 102.0})  # late
    assert not workers.workers["w@h"].online


# -- reading -----------------------------------------------------------------------------------------
def fresh_broker() -> MemoryBroker:
    return MemoryBroker(f"memory://monitor-{uuid.uuid4().hex}")


def _append(broker: MemoryBroker, *kinds: str) -> str:
    return broker.log_append(events.EVENT_LOG, events.batch([events.event(k, uuid="u") for k in kinds]), 100)


def test_reader_from_start_from_now_and_resuming_after_an_id():
    broker = fresh_broker()
    _append(broker, "task-received", "task-started")  # one entry, a batch of two
    now = EventReader(broker, FROM_NOW)
    assert now.read() == []
    last = _append(broker, "task-succeeded")
    assert [e["type"] for _, e in EventReader(broker, FROM_START).read()] == \
        ["task-received", "task-started", "task-succeeded"]
    assert [(i, e["type"]) for i, e in now.read()] == [(last, "task-succeeded")]
    resumed = EventReader(broker, now.position)
    assert resumed.read() == []
    _append(broker, "task-sent")
    assert [e["type"] for _, e in resumed.read()] == ["task-sent"]


def test_reader_skips_an_entry_that_is_not_json():
    broker = fresh_broker()
    broker.log_append(events.EVENT_LOG, b"not json", 100)
    _append(broker, "task-sent")
    assert [e["type"] for _, e in EventReader(broker).read()] == ["task-sent"]


def test_follow_stops_at_max_events_and_at_its_deadline():
    import time

    broker = fresh_broker()
    for _ in range(3):
        _append(broker, "task-received", "task-started")
    assert sum(len(b) for b in follow(broker, FROM_START, max_events=5, wait=0.01)) == 5
    started = time.monotonic()
    batches = list(follow(broker, FROM_NOW, deadline=time.monotonic() + 0.2, wait=0.05))
    assert all(b == [] for b in batches) and 0.15 < time.monotonic() - started < 2
