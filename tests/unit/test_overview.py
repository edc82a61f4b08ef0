"""What the overview and the retry button read: per-minute outcomes and wait/runtime percentiles
from the history (through a covering index, on files written before those columns existed), the
arguments the worker keeps as JSON for a retry, the chart, and the CSRF token."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from celeriac import events
from celeriac.argtypes import untag
from celeriac.dashboard.chart import Bucket, outcome_bars
from celeriac.dashboard.csrf import Csrf
from celeriac.dashboard.retry import NotRetryable, retry_call
from celeriac.monitor.history import History, TaskQuery, percentiles
from celeriac.monitor.state import TaskRecord
from celeriac.redaction import Redactor


def finished(n: int, state: str, at: float, runtime: float, wait: float, name: str = "add") -> TaskRecord:
    record = TaskRecord(f"t{n}", name=name, state=state, sent=at - runtime - wait, started=at - runtime,
                        runtime=runtime, timestamp=at)
    if state == "SUCCESS":
        record.succeeded = at
    else:
        record.failed = at
    return record


def test_outcomes_count_each_minute_by_final_state(tmp_path: Path):
    history = History(str(tmp_path / "h.db"), max_tasks=None)
    base = 60_000.0
    history.save([finished(1, "SUCCESS", base + 1, 0.1, 0.0), finished(2, "SUCCESS", base + 59, 0.1, 0.0),
                  finished(3, "FAILURE", base + 61, 0.1, 0.0), finished(4, "SUCCESS", base - 1, 0.1, 0.0),
                  TaskRecord("running", name="add", state="STARTED", started=base + 2, timestamp=base + 2)])
    assert history.outcomes(base, 60.0) == {(base, "SUCCESS"): 2, (base + 60, "FAILURE"): 1}


def test_timings_are_percentiles_per_name_within_the_window(tmp_path: Path):
    history = History(str(tmp_path / "h.db"), max_tasks=None)
    now = 100_000.0
    history.save([finished(i, "SUCCESS", now - 10 - i, runtime=(i + 1) / 100, wait=i / 10) for i in range(100)]
                 + [finished(500, "SUCCESS", now - 5000, 9.0, 9.0)]  # outside the window: left out
                 + [finished(600, "FAILURE", now - 1, 2.0, 0.5, name="mul")])
    timings = history.timings(now - 3600)
    assert sorted(timings) == ["add", "mul"]
    add = timings["add"]
    assert add.count == 100 and add.runtime == (0.5, 0.95, 0.99) and add.wait == pytest.approx((4.9, 9.4, 9.8))
    assert timings["mul"].runtime == (2.0, 2.0, 2.0)
    assert history.timings(now - 3600, limit=1) == {"mul": timings["mul"]}  # the newest first, bounded


def test_the_overview_reads_the_covering_index_not_the_rows(tmp_path: Path):
    history = History(str(tmp_path / "h.db"), max_tasks=None)
    db = sqlite3.connect(tmp_path / "h.db")
    for sql in ("SELECT CAST((finished - 1) / 60 AS INTEGER) AS slot, state, count(*) FROM tasks "
                "WHERE finished >= 1 GROUP BY slot, state",
                "SELECT name, runtime, wait FROM tasks WHERE finished >= 1 ORDER BY finished DESC LIMIT 5"):
        plan = " ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "COVERING INDEX tasks_finished" in plan, plan
    history.close()


def test_a_history_file_from_before_the_overview_gets_its_columns(tmp_path: Path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE tasks (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, name TEXT,
        state TEXT NOT NULL, queue TEXT, worker TEXT, received REAL, started REAL, timestamp REAL NOT NULL,
        indexed INTEGER NOT NULL DEFAULT 0, record BLOB NOT NULL);""")
    db.close()
    history = History(str(path), max_tasks=None)
    history.save([finished(1, "SUCCESS", 120.0, 0.5, 0.25)])
    assert history.outcomes(60.0) == {(120.0, "SUCCESS"): 1}
    assert history.timings(0.0)["add"].wait == (0.25, 0.25, 0.25)


def test_percentiles_by_nearest_rank():
    assert percentiles([]) is None
    assert percentiles([3.0]) == (3.0, 3.0, 3.0)
    assert percentiles([float(v) for v in range(1, 21)]) == (10.0, 19.0, 20.0)


def decoded(raw: msgspec.Raw | None) -> dict[str, object]:
    assert raw is not None
    value = msgspec.json.decode(bytes(raw))
    assert isinstance(value, dict)
    return value


def test_the_received_event_keeps_the_arguments_as_json_with_their_types():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    call = decoded(events.call_json([1, "a", when], {"price": Decimal("1.10")}))
    assert "redacted" not in call
    assert untag(call["args"]) == [1, "a", when] and untag(call["kwargs"]) == {"price": Decimal("1.10")}


def test_redacted_arguments_are_marked_so_they_are_never_sent_again_as_stars():
    def login(user: str, password: str) -> None: ...

    hide = Redactor(["password"])
    call = decoded(events.call_json(["ada", "hunter2"], {}, hide, login))
    assert call == {"args": ["ada", "***"], "kwargs": {}, "redacted": True}
    # Nothing to hide in this call: it may be repeated as it was.
    assert decoded(events.call_json(["ada"], {"x": 1}, hide, login)) == {"args": ["ada"], "kwargs": {"x": 1}}


def test_arguments_too_large_or_unencodable_are_not_kept():
    assert events.call_json(["x" * (events.CALL_MAX_BYTES + 1)], {}) is None
    assert events.call_json([object()], {}) is None


def test_a_retry_takes_the_kept_arguments_or_says_why_it_cannot():
    record = TaskRecord("t", name="add", call={"args": [{"__type__": "decimal", "__value__": "2.5"}], "kwargs": {}})
    assert retry_call(record) == ([Decimal("2.5")], {})
    for call, why in (({"args": ["***"], "kwargs": {}, "redacted": True}, "redacted"), (None, "not kept")):
        with pytest.raises(NotRetryable, match=why):
            retry_call(TaskRecord("t", name="add", call=call))
    with pytest.raises(NotRetryable, match="name is not known"):
        retry_call(TaskRecord("t", call={"args": [], "kwargs": {}}))


def test_the_task_received_event_carries_the_call_through_the_fold():
    record = TaskRecord("t")
    raw = events.batch([events.TaskEvent("task-received", "t", "add", "w@h", 1.0, 1, args="[1, 2]",
                                         call=events.call_json([1, 2], {}))])
    record.apply(events.decode(raw))
    assert record.call == {"args": [1, 2], "kwargs": {}}
    assert TaskRecord.from_dict(msgspec.json.decode(msgspec.json.encode(record.as_dict()))).call == record.call


def test_the_chart_draws_one_stack_per_minute_from_numbers_only():
    svg = str(outcome_bars([Bucket(0.0, 3, 1), Bucket(60.0, 0, 0), Bucket(120.0, 10, 0)]))
    assert svg.startswith("<svg") and svg.count('class="ok"') == 2 and svg.count('class="bad"') == 1
    assert "style=" not in svg and "<script" not in svg  # the CSP allows neither inline


def test_csrf_tokens_belong_to_one_session_and_one_process():
    csrf = Csrf(secret=b"k" * 32)
    assert csrf.token("session-a") != csrf.token("session-b")
    assert csrf.token("session-a") == Csrf(secret=b"k" * 32).token("session-a")
    assert csrf.token("session-a") != Csrf().token("session-a")


def test_a_task_the_dashboard_sent_is_stored_unless_events_got_there_first(tmp_path: Path):
    history = History(str(tmp_path / "h.db"), max_tasks=None)
    history.save([TaskRecord("seen", name="add", state="STARTED", timestamp=5.0)])
    history.save([TaskRecord("seen", name="add", timestamp=1.0), TaskRecord("new", name="add", args="(1,)",
                                                                            timestamp=1.0)], only_new=True)
    seen, new = history.get("seen"), history.get("new")
    assert seen is not None and seen.state == "STARTED"
    assert new is not None and new.state == "PENDING"
    assert [r.uuid for r in history.query(TaskQuery(search="(1,)"))] == ["new"]  # searchable like the rest


def test_notices_are_shown_only_when_this_dashboard_wrote_them():
    csrf = Csrf()
    tag = csrf.sign("Revoked t1.")
    assert csrf.signed("Revoked t1.", tag)
    assert not csrf.signed("Your session expired: log in at evil.example", tag)
    assert not Csrf().signed("Revoked t1.", tag)
