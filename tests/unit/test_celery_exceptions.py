"""Celery's exception names: code that catches or raises them keeps its meaning."""

from __future__ import annotations

import warnings

import pytest

from celeriac import Celery, message
from celeriac.exceptions import (
    BackendError,
    BackendGetMetaError,
    BackendStoreError,
    CeleriacError,
    CeleryWarning,
    DecodeError,
    DuplicateTaskNameWarning,
    InvalidTaskError,
    TaskError,
    Terminated,
    WorkerShutdown,
    WorkerTerminate,
)


def test_worker_shutdown_and_terminate_end_a_process_as_system_exit_does():
    for cls in (WorkerShutdown, WorkerTerminate):
        with pytest.raises(SystemExit) as caught:
            raise cls(0)
        assert caught.value.code == 0
        assert not isinstance(caught.value, Exception)  # `except Exception` in a task does not swallow it


def test_a_message_that_is_not_a_task_is_an_invalid_task_error():
    with pytest.raises(InvalidTaskError):
        message.decode(b"\x00 not a task message", accept=frozenset({"json"}))
    assert InvalidTaskError is DecodeError


def test_task_and_backend_errors_share_the_root_and_keep_celerys_fields():
    assert issubclass(Terminated, TaskError) and TaskError is CeleriacError
    stored = BackendStoreError("no room", state="SUCCESS", task_id="t1")
    assert (stored.state, stored.task_id, str(stored)) == ("SUCCESS", "t1", "no room")
    assert BackendGetMetaError("gone", task_id="t2").task_id == "t2"
    assert issubclass(BackendStoreError, BackendError) and issubclass(BackendError, CeleriacError)


def test_two_functions_under_one_task_name_warn_and_the_later_wins():
    app = Celery("dup")

    def first():
        return 1

    def second():
        return 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.task(first, name="dup.job")
        app.task(first, name="dup.job")  # the same function again (a module imported twice): no warning
    with pytest.warns(DuplicateTaskNameWarning, match="'dup.job' was .*first; now .*second replaces it"):
        app.task(second, name="dup.job")
    assert app.tasks["dup.job"]() == 2
    assert issubclass(DuplicateTaskNameWarning, CeleryWarning) and issubclass(CeleryWarning, UserWarning)
