"""Sending a task again with the arguments it ran with: the pages' Retry button and the v1 API's
``POST /api/v1/tasks/<id>/retry``.

The arguments come from the JSON the worker's ``task-received`` event keeps (``call``), never
from Celery's repr strings. A task whose arguments were redacted, or not kept, is not retried:
sending ``'***'`` in place of a secret would run the task with the wrong input.
"""

from __future__ import annotations

import time
from typing import Any

from ..argtypes import untag
from ..monitor.state import TaskRecord
from .service import Dashboard


class NotRetryable(Exception):
    """Why this task cannot be sent again with the same arguments (one sentence)."""


def retry_call(record: TaskRecord) -> tuple[list[Any], dict[str, Any]]:
    """The arguments ``record`` ran with; NotRetryable says why when they are not known."""
    call = record.call
    if not record.name:
        raise NotRetryable("Its name is not known, so it cannot be sent again.")
    if isinstance(call, dict) and call.get("redacted"):
        raise NotRetryable("Its arguments were redacted (task_redact_args), so it cannot be sent again with "
                           "the same arguments: the dashboard never sees the hidden values.")
    if not isinstance(call, dict) or not isinstance(call.get("args"), list) or not isinstance(call.get("kwargs"), dict):
        raise NotRetryable("Its arguments were not kept as JSON (larger than 16 KB, or recorded by an older "
                           "worker), so it cannot be sent again with the same arguments.")
    return untag(list(call["args"])), untag(dict(call["kwargs"]))


def resend(dash: Dashboard, record: TaskRecord) -> str:
    """Send ``record``'s task again (same name, arguments, queue, priority); returns the new id."""
    args, kwargs = retry_call(record)
    assert record.name is not None  # retry_call checked
    options: dict[str, Any] = {k: v for k, v in (("queue", record.queue), ("priority", record.priority))
                               if v is not None}
    result = dash.app.send_task(record.name, args, kwargs, **options)
    # Known to the history at once, so a page showing it has it before a worker's first event;
    # the events then take over (only_new: if they got there first, they stay).
    now = time.time()
    sent = TaskRecord(result.id, name=record.name, sent=now, timestamp=now, state_time=now, args=record.args,
                      kwargs=record.kwargs, queue=record.queue, priority=record.priority, call=record.call,
                      timeline=[[now, "task-sent", f"a retry of {record.uuid}"]])
    dash.history.save([sent], only_new=True)
    return str(result.id)
