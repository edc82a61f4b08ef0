"""A revoked countdown task never runs, however long the revocation is remembered (issue 10, finding 9)."""

from __future__ import annotations

import time

import msgspec

from celeriac import Celery, states
from celeriac.control import REVOKED_MAP
from celeriac.testing import wait_until
from conftest import read_marks


def test_a_countdown_task_revoked_is_gone_from_the_broker_for_a_worker_started_after_the_horizon(
        app, start_worker, marks):
    import coreapp

    late = coreapp.record.apply_async(("late",), countdown=2)
    kept = coreapp.record.apply_async(("kept",), countdown=2)
    app.control.revoke(late.id)
    # As if the revocation were made long ago: the horizon after which a worker forgets it is past.
    app.broker.map_set(REVOKED_MAP, late.id, msgspec.json.encode({"time": time.time() - 30 * 24 * 3600}))
    assert late.id not in app.control.revoked()
    time.sleep(2.5)  # both are due now
    start_worker("-c", "1")
    assert kept.get(timeout=10) == "kept"
    assert coreapp.add.delay(1, 1).get(timeout=10) == 2
    time.sleep(0.5)
    assert [line.split()[0] for line in read_marks(marks, "record")] == ["kept"]
    assert late.state == states.REVOKED  # recorded when removed: nobody waits on it forever


def test_a_task_revoked_while_it_runs_is_not_retried_later(app, start_worker, marks):
    """Its retry would be a delayed message due after the revocation might be forgotten."""
    import coreapp

    first = start_worker("-c", "1")
    result = coreapp.retry_later.delay(1.5, 2)
    wait_until(lambda: read_marks(marks, "retry_later"), 10, message="task started")
    app.control.revoke(result.id)
    wait_until(lambda: result.state != states.PENDING, 10, message="first attempt concluded")
    first.stop()
    # Long after: the revocation is forgotten, and a worker that never saw it starts.
    app.broker.map_set(REVOKED_MAP, result.id, msgspec.json.encode({"time": time.time() - 30 * 24 * 3600}))
    start_worker("-c", "1")
    time.sleep(3.0)  # past the retry's countdown
    assert read_marks(marks, "retry_later") == ["0"]
    assert result.state == states.REVOKED


def test_revocations_are_pruned_past_their_time_and_beyond_the_cap():
    app = Celery("revokes", broker="memory://revokes-cap", set_as_current=False)
    try:
        app.conf.worker_revokes_max = 3
        for index in range(5):
            app.control.revoke(f"t{index}")
        assert sorted(app.control.revoked()) == ["t2", "t3", "t4"]
        app.conf.worker_revokes_max = 100
        app.conf.worker_revoke_expires = 0.05
        app.control.revoke("short")
        assert "short" in app.control.revoked()
        time.sleep(0.1)
        assert "short" not in app.control.revoked()
        assert "t4" in app.control.revoked()  # the others keep their own time
    finally:
        app.close()


def test_a_countdown_task_revoked_says_so_in_the_event_log_for_the_history():
    """No worker ever sees it, so no worker reports it revoked: the revoke itself does, or the
    dashboard's history (which folds the event log) would show it pending for good."""
    from celeriac.monitor import EventReader, TaskStates
    from celeriac.monitor.reader import FROM_START

    app = Celery("revokes", broker="memory://revokes-event", set_as_current=False)
    try:
        app.conf.task_send_sent_event = True

        @app.task(name="later")
        def later() -> None: ...

        result = later.apply_async(countdown=60)
        app.control.revoke(result.id)
        fold = TaskStates()
        for _, event in EventReader(app.broker, FROM_START).read():
            fold.apply(event)
        record = fold.get(result.id)
        assert record is not None and record.state == states.REVOKED and record.revoked is not None
        assert record.timeline[-1][1:] == ["task-revoked", "revoked before it was due"]
        assert record.worker is None  # no worker had it
    finally:
        app.close()
