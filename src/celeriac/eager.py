"""Eager mode: ``Task.apply()`` and ``task_always_eager`` run the task in the caller's process
through the same execution path as a worker, retries included (without their countdowns)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from . import message, states
from .execution import IGNORED, execute, outcome_meta, request_for, send_postrun
from .message import Envelope
from .options import SendOptions, put_stamps
from .publish import flow_of

if TYPE_CHECKING:
    from .result import EagerResult
    from .task import Task


def apply_eagerly(task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any], *,
                  task_id: str | None = None, throw: bool | None = None, retries: int = 0,
                  headers: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> EagerResult[Any]:
    from .canvas import followups
    from .result import EagerResult

    app = task.app
    opts = SendOptions.of(task.name, options or {})
    envelope = Envelope(id=task_id or str(uuid.uuid4()), task=task.name, args=args, kwargs=kwargs,
                        retries=retries, headers=headers or {}, queue=task.queue or app.default_queue,
                        root_id=opts.root_id, parent_id=opts.parent_id, group_id=opts.group_id)
    if opts.link or opts.link_error or opts.chain:
        envelope.flow = flow_of(opts)
    if opts.stamped_headers:
        put_stamps(envelope.headers, opts)
    # What the caller passes must survive a trip through the wire, as it would for a worker.
    if app.conf.task_serializer == "json":
        envelope = message.decode(message.encode(envelope), accept=frozenset({"json"}))
    store = app.conf.task_store_eager_result
    while True:
        context = request_for(envelope, hostname="eager", delivery_info={"is_eager": True}, is_eager=True)
        outcome = execute(task, context)
        if outcome.state == states.RETRY and outcome.retry is not None:
            if store:
                app.backend.write([(envelope.id, outcome_meta(context, outcome, task=task)[1], False)])
            send_postrun(task, context, outcome)
            envelope = outcome.retry
            continue
        break
    if outcome.state == IGNORED:
        outcome.state = states.SUCCESS
    state, encoded = outcome_meta(context, outcome, extended=True, redactor=app.redactor, task=task)
    send_postrun(task, context, outcome)
    records = [(envelope.id, encoded, state in states.READY_STATES)]
    if envelope.flow is not None:  # what follows runs here too, as the worker would send it
        records = followups.conclude(app, task, context, outcome, records, eager=True)
    if store:
        app.backend.write(records)
    propagate = app.conf.task_eager_propagates if throw is None else throw
    if propagate and outcome.exc is not None and state != states.SUCCESS:
        raise outcome.exc
    return EagerResult(envelope.id, message.loads(encoded), app=app)
