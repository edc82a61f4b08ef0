"""Smaller Celery names the API audit (docs/celery-api-coverage.md) found missing, each doing
what Celery's does: app.current_task / current_worker_task / timezone, Task.backend and
Task.MaxRetriesExceededError, states.IGNORED / PRECEDENCE, Celery's exception names, subtask."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import celeriac
from celeriac import Celery, states
from celeriac.exceptions import (
    CeleriacError,
    CeleryError,
    ConfigurationError,
    ImproperlyConfigured,
    TaskControl,
    TaskPredicate,
    TaskRevoked,
    TaskRevokedError,
)
from celeriac.utils.log import LOG_LEVELS, base_logger


def test_app_current_task_tells_a_worker_run_from_a_direct_call() -> None:
    app = Celery("names", task_always_eager=True, broker_url="memory://names", result_backend="memory://names")
    seen: dict[str, Any] = {}

    @app.task(bind=True)
    def probe(self: Any) -> None:
        seen["current"] = app.current_task
        seen["worker"] = app.current_worker_task

    assert app.current_task is None and app.current_worker_task is None
    probe.delay().get(timeout=5)
    assert seen == {"current": probe, "worker": probe}
    probe()  # called as a function: current, but not a worker's
    assert seen == {"current": probe, "worker": None}
    assert probe.backend is app.backend
    assert probe.MaxRetriesExceededError is celeriac.MaxRetriesExceededError


def test_app_timezone_follows_the_setting() -> None:
    assert Celery("tz", broker_url="memory://tz").timezone.utcoffset(None) == timedelta(0)
    app = Celery("tz2", broker_url="memory://tz2", timezone="Asia/Kolkata")
    from datetime import datetime

    assert app.timezone.utcoffset(datetime(2026, 1, 1)) == timedelta(hours=5, minutes=30)


def test_states_precedence_orders_as_celery() -> None:
    assert states.IGNORED == "IGNORED"
    assert states.precedence(states.SUCCESS) < states.precedence(states.STARTED) < states.precedence(states.PENDING)
    assert states.precedence("CUSTOM") == states.PRECEDENCE.index(None)


def test_celery_exception_names_catch_celeriac_errors() -> None:
    assert CeleryError is CeleriacError and ImproperlyConfigured is ConfigurationError
    assert TaskPredicate is TaskControl and TaskRevokedError is TaskRevoked
    with pytest.raises(ImproperlyConfigured):
        Celery("bad", broker_url="memory://bad", task_not_a_setting=1)


def test_subtask_and_log_names() -> None:
    assert celeriac.subtask("proj.add", (1, 2)) == celeriac.signature("proj.add", (1, 2))
    assert LOG_LEVELS["INFO"] == 20 and LOG_LEVELS[40] == "ERROR"
    assert base_logger.name == "celeriac"


def test_signature_replace_swaps_parts_instead_of_merging() -> None:
    sig = celeriac.signature("proj.add", (1,), {"y": 2}, queue="a", parent_id="p1", root_id="r1")
    assert (sig.parent_id, sig.root_id) == ("p1", "r1")
    swapped = sig.replace(args=(5,), options={"queue": "b"})
    assert swapped.args == (5,) and swapped.kwargs == {"y": 2} and swapped.options == {"queue": "b"}
    assert sig.args == (1,) and sig.options["queue"] == "a"  # the original is untouched
    assert sig.clone((0,)).args == (0, 1)  # clone merges: call-time args first


def test_send_event_reaches_the_event_stream_from_a_worker() -> None:
    """Task.send_event from a task running on a (threads-pool, in-process) worker lands in the
    broker's event log with the run's id and worker, as Celery's does in its event stream."""
    from celeriac.events import EVENT_LOG, decode_entry
    from celeriac.testing import start_worker

    url = f"memory://send-event-{id(object())}"
    app = Celery("events", broker_url=url, result_backend=url)

    @app.task(bind=True)
    def thumbnail(self: Any, size: int) -> int:
        self.send_event("task-thumbnail", size=size)
        return size

    with start_worker(app):
        result = thumbnail.delay(64)
        assert result.get(timeout=10) == 64
    events = [e for _, d in app.broker.log_read(EVENT_LOG, None, 1000) for e in decode_entry(d)]
    (sent,) = [e for e in events if e["type"] == "task-thumbnail"]
    assert sent["uuid"] == result.id and sent["size"] == 64 and sent["hostname"]
    app.close()
