"""Encoding of events (any value a task hands over is shown, never a reason to lose the
event), and the cap that keeps the event log near its byte bound."""

from __future__ import annotations

import datetime
import random

import pytest

from celeriac import events
from celeriac.events import ENTRY_OVERHEAD, SLACK, EventCap


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


# -- the event log's entry cap ---------------------------------------------------------------------
def _expected_cap(sizes: list[int], max_bytes: int, max_entries: int) -> int:
    """The cap by its definition: this writer's newest entries that fit in the budget, then as
    many older ones as still fit at the mean size of those (none once the budget is reached)."""
    budget = max_bytes / SLACK
    kept: list[int] = []
    for size in reversed(sizes[-max_entries:]):
        if kept and sum(kept) + size + ENTRY_OVERHEAD > budget:
            break
        kept.append(size + ENTRY_OVERHEAD)
    room = max(0.0, budget - sum(kept))
    return min(max_entries, len(kept) + int(room * len(kept) / sum(kept)))


@pytest.mark.parametrize("max_entries", [1, 7, 100_000])
def test_event_cap_keeps_the_newest_entries_that_fit_whatever_their_sizes(max_entries):
    rng = random.Random(7)
    cap = EventCap(200_000, max_entries)
    sizes: list[int] = []
    for index in range(3000):
        # Mostly small batches, now and then one 40-400 times larger (a flusher that fell behind).
        size = rng.randint(200, 2000) if index % 97 else rng.randint(80_000, 190_000)
        sizes.append(size)
        assert cap(b"x" * size) == _expected_cap(sizes, 200_000, max_entries), index


def test_event_cap_after_one_huge_batch_keeps_the_log_near_its_bound():
    """A mean of sizes let one batch far larger than the rest cut the log to a fraction of the
    bound for dozens of appends after it; the cap now counts what is really kept."""
    cap = EventCap(1_000_000, 100_000)
    for _ in range(200):
        cap(b"x" * 16_000)
    cap(b"x" * 600_000)
    kept = cap(b"x" * 16_000)
    # The huge batch and the newest small ones: as near the bound as whole entries allow.
    assert 600_000 + (kept - 1) * (16_000 + ENTRY_OVERHEAD) > 1_000_000 / SLACK - 16_100
    for _ in range(kept):
        last = cap(b"x" * 16_000)
    assert last == int(1_000_000 / SLACK / (16_000 + ENTRY_OVERHEAD))  # the huge one aged out
