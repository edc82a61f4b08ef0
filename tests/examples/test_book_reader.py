"""examples/book_reader: include=[...], named bound tasks, asyncio.run, admin endpoints, beat, rate limit.

What the seed (004) relies on: an app built with ``include=[...]``; tasks named
``app.tasks.close_abandoned_sessions`` etc. with ``bind``/``max_retries``/``default_retry_delay``
that run async code through ``asyncio.run``; admin endpoints that run the cleanup now
(``apply_async().get(timeout=30)``), in the background (task id, PENDING) and report stats
(``.get(timeout=10)``); a 1800.0 s beat entry with ``queue``/``priority`` options;
``rate_limit='10/m'``; ``task_acks_late`` + ``task_reject_on_worker_lost`` (a task whose process
dies is run again, not lost); ``worker_prefetch_multiplier=1``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import uuid

import pytest

from .examples_support import TestClient, poll

APP = "app.core.celery_app"
TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOUR = 3600


@pytest.fixture
def reader(run_example, tmp_path, monkeypatch):
    monkeypatch.setenv("BOOKREADER_DB", str(tmp_path / "bookreader.db"))
    monkeypatch.setenv("BOOKREADER_ADMIN_TOKEN", TOKEN)
    return run_example("book_reader")


def add_session(tmp_path, *, started_hours_ago: float, user: str = "user456", book: str = "book789") -> str:
    session_id = uuid.uuid4().hex[:8]
    with sqlite3.connect(tmp_path / "bookreader.db") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS reading_sessions (id TEXT PRIMARY KEY, user_id TEXT, book_id TEXT,"
                     " is_active INTEGER, started_at REAL, ended_at REAL, start_position INTEGER,"
                     " end_position INTEGER, duration_minutes INTEGER)")
        conn.execute("INSERT INTO reading_sessions (id, user_id, book_id, is_active, started_at, start_position)"
                     " VALUES (?, ?, ?, 1, ?, 120)", (session_id, user, book, time.time() - started_hours_ago * HOUR))
    conn.close()
    return session_id


def active_sessions(tmp_path) -> set[str]:
    with sqlite3.connect(tmp_path / "bookreader.db") as conn:
        rows = conn.execute("SELECT id FROM reading_sessions WHERE is_active = 1").fetchall()
    conn.close()
    return {row[0] for row in rows}


def test_admin_endpoints_run_the_cleanup_now_in_the_background_and_report(reader, tmp_path):
    reader.worker(APP, "-l", "info", "-c", "2")
    main = reader.import_("app.main")
    celery_app = reader.import_(APP).celery_app
    abandoned = add_session(tmp_path, started_hours_ago=3)
    fresh = add_session(tmp_path, started_hours_ago=0.5)

    with TestClient(main.app) as client:
        assert client.post("/api/v1/admin/reading-sessions/cleanup").status_code == 401

        # Synchronously: the endpoint waits for the task (apply_async().get(timeout=30)).
        ran = client.post("/api/v1/admin/reading-sessions/cleanup", headers=AUTH)
        assert ran.status_code == 200, ran.text
        body = ran.json()
        assert body["closed_count"] == 1 and body["error"] is None and body["execution_time_ms"] >= 0
        assert active_sessions(tmp_path) == {fresh}

        # In the background: a task id and PENDING at once; the task itself finishes later.
        another = add_session(tmp_path, started_hours_ago=5)
        started = client.post("/api/v1/admin/reading-sessions/cleanup-async", headers=AUTH).json()
        assert started["status"] == "PENDING"
        assert started["message"] == (f"Cleanup task started with ID: {started['task_id']}. "
                                      "Check status via Flower or Celery API.")
        assert celery_app.AsyncResult(started["task_id"]).get(timeout=10)["closed_count"] == 1
        assert active_sessions(tmp_path) == {fresh}

        stats = client.get("/api/v1/admin/reading-sessions/cleanup-stats", params={"hours": 24}, headers=AUTH)
        assert stats.status_code == 200, stats.text
        stats = stats.json()
        assert {k: stats[k] for k in ("total_closed", "total_active", "no_progress_count", "period_hours")} == {
            "total_closed": 2, "total_active": 1, "no_progress_count": 2, "period_hours": 24}
        assert stats["avg_duration_minutes"] == pytest.approx((180 + 300) / 2, abs=2)
        assert client.get("/api/v1/admin/reading-sessions/cleanup-stats", params={"hours": 500},
                          headers=AUTH).status_code == 422
    assert abandoned not in active_sessions(tmp_path) and another not in active_sessions(tmp_path)

    # `celery -A app.core.celery_app inspect registered`, as the seed lists it.
    registered = reader.cli(APP, "inspect", "registered").stdout
    for name in ("app.tasks.close_abandoned_sessions", "app.tasks.get_cleanup_statistics",
                 "app.core.tasks.process_book_task", "app.core.tasks.generate_image_task"):
        assert name in registered, registered


def test_beat_sends_the_float_interval_entry_with_its_queue_and_priority(reader, tmp_path):
    listed = reader.cli(APP, "beat", "--list")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in listed.stdout.splitlines() if "close-abandoned-reading-sessions" in r)
    assert "app.tasks.close_abandoned_sessions" in row and "every 30 minutes" in row, row
    assert "priority=2" in row and "queue=light" in row, row
    assert "cleanup-old-results" in listed.stdout and "at 03:00 every day" in listed.stdout

    abandoned = add_session(tmp_path, started_hours_ago=3)
    # The worker reads only "light": the entry's queue option is what brings the task to it.
    reader.worker(APP, "-l", "info", "-c", "1", "-Q", "light")
    # The same entry every second instead of every 30 minutes (tests/examples/apps/bookreader_fast_beat.py).
    reader.beat("bookreader_fast_beat")
    poll(lambda: active_sessions(tmp_path), lambda active: abandoned not in active, timeout=15)


def test_rate_limit_ten_a_minute_spaces_starts_six_seconds_apart(reader):
    reader.worker(APP, "-l", "info", "-c", "2", env={"BOOKREADER_IMAGE_SECONDS": "0.1"})
    tasks = reader.import_("app.core.tasks")
    calls = [tasks.generate_image_task.delay("d1"), tasks.generate_image_task.delay("d2")]
    # Two free processes, yet only one call runs: 10/m allows one start every 6 s, and which of
    # the two gets the first start is up to the workers.
    poll(lambda: [c.state for c in calls], lambda states: "SUCCESS" in states, timeout=10)
    assert sorted(c.state for c in calls) == ["PENDING", "SUCCESS"]
    first, second = sorted(c.get(timeout=15)["generated_at"] for c in calls)
    assert second - first >= 5.5


def test_a_task_whose_process_dies_is_run_again(reader):
    """task_acks_late + task_reject_on_worker_lost: killing the process mid-task puts the task
    back, and it completes (Celery's default would record WorkerLostError instead)."""
    reader.worker(APP, "-l", "info", "-c", "1", env={"BOOKREADER_BOOK_SECONDS": "1.5"})
    celery_app = reader.import_(APP).celery_app
    tasks = reader.import_("app.core.tasks")
    assert (celery_app.conf.task_acks_late, celery_app.conf.task_reject_on_worker_lost) == (True, True)
    assert celery_app.conf.worker_prefetch_multiplier == 1

    book = tasks.process_book_task.delay("book-1")

    def running_pid():
        # `inspect active`: which process runs the book (worker_pid, as in Celery's reply).
        replies = celery_app.control.inspect(timeout=1).active() or {}
        return next((t["worker_pid"] for running in replies.values() for t in running if t["id"] == book.id), None)

    os.kill(poll(running_pid, bool, timeout=10)[-1], signal.SIGKILL)
    assert book.get(timeout=20) == {"book_id": "book-1", "chapters": 12, "descriptions": 87}


def test_inspect_active_shows_the_running_task(reader):
    """`celery -A app.core.celery_app inspect active`, the seed's first monitoring command."""
    reader.worker(APP, "-l", "info", "-c", "1", env={"BOOKREADER_BOOK_SECONDS": "3"})
    tasks = reader.import_("app.core.tasks")
    book = tasks.process_book_task.delay("book-1")
    poll(lambda: book.state, lambda state: state == "STARTED", timeout=10)
    active = reader.cli(APP, "inspect", "active")
    assert active.returncode == 0, active.stdout + active.stderr
    assert book.id in active.stdout and "app.core.tasks.process_book_task" in active.stdout
