"""Encoding of events: any value a task hands over is shown, never a reason to lose the event."""

from __future__ import annotations

import datetime

from celeriac import events


def test_values_json_cannot_carry_are_shown_by_their_repr():
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    data = events.event("task-sent", uuid="1", eta=datetime.timedelta(seconds=5), extra=Opaque(), retries=0)
    decoded = events.decode(data)
    assert decoded["type"] == "task-sent" and decoded["retries"] == 0
    assert decoded["extra"] == "<opaque>" and decoded["eta"]


def test_a_batch_entry_reads_back_as_its_events_in_order():
    entry = events.batch([events.event("task-received", uuid="1"), events.event("task-started", uuid="1")])
    assert [e["type"] for e in events.decode_entry(entry)] == ["task-received", "task-started"]
    assert [e["type"] for e in events.decode_entry(events.batch([events.event("a")]))] == ["a"]


def test_task_events_and_encoded_events_share_one_entry():
    received = events.TaskEvent("task-received", "1", "t", "w@h", 10.5, 42, args="()", retries=0, queue="q")
    entry = events.batch([received, events.event("task-dead-lettered", uuid="2", reason="bad")])
    first, second = events.decode_entry(entry)
    assert first == {"type": "task-received", "uuid": "1", "name": "t", "hostname": "w@h", "timestamp": 10.5,
                     "pid": 42, "args": "()", "retries": 0, "queue": "q"}
    assert second["type"] == "task-dead-lettered" and second["reason"] == "bad"
    assert events.decode_entry(events.batch([received])) == [first]


def test_a_task_event_with_an_odd_value_costs_that_value_not_the_batch():
    odd = events.TaskEvent("task-succeeded", "1", "t", "w@h", 1.0, 2, result=object())  # type: ignore[arg-type]
    fine = events.TaskEvent("task-started", "1", "t", "w@h", 1.0, 2)
    decoded = events.decode_entry(events.batch([fine, odd]))
    assert [e["type"] for e in decoded] == ["task-started", "task-succeeded"]
    assert decoded[1]["result"].startswith("<object object")
