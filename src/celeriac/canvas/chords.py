"""Sending a chord, and joining it.

Sending: the header tasks are frozen (their ids fixed), the body's *join message* (a
``celeriac.chord_join`` task on the body's queue, carrying the body and the header ids) is
stored in the broker with the header's size (:meth:`Coordination.chord_start`), then the
header tasks are sent, each carrying a :class:`~celeriac.message.ChordRef`.

Joining: each header task that finishes (success or failure) is counted by
:meth:`Coordination.chord_part`, in one atomic step with storing its result; the step that
counts the last distinct header task enqueues the join message, or, as in Celery, the first
header task that fails (or is revoked or dead-lettered) enqueues it at once and closes the
chord. A header task run twice (its worker was killed and the message redelivered) is counted
once, so the join is enqueued exactly once. The join task reads the header's results and sends
the body with them, or, if a header task failed, records the body FAILURE with ChordError and
calls its errbacks.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from .. import message, states
from ..exceptions import ChordError
from ..message import ChordRef
from ..options import SendOptions
from .signature import Signature, signature

if TYPE_CHECKING:
    from ..app import Celery
    from ..result import AsyncResult, EagerResult
    from ..task import Task

JOIN_TASK = "celeriac.chord_join"

logger = logging.getLogger("celeriac.canvas")


def chord_ttl(app: Celery) -> float:
    """How long a chord's count waits for its header in the broker: as long as results live."""
    return float(app.conf.result_expires or 7 * 86400)


def send_chord(app: Celery, header: list[Signature], body: Signature, options: dict[str, Any]) -> AsyncResult[Any]:
    from .. import publish
    from ..result import GroupResult

    group_id = publish.new_task_id()
    result = body.freeze(body.options.get("task_id"))
    header_results = [member.freeze(group_id=group_id) for member in header]
    result.parent = GroupResult(group_id, header_results, app=app)
    if not header:  # as Celery: an empty header calls the body with an empty list at once
        body.apply_async(([],))
        return result
    fixed = publish.call_defaults(app, body.task, app.tasks.get(body.task), (), {}, {
        "queue": body.options.get("queue"), "priority": body.options.get("priority"),
        "ignore_result": True, "expires": None})
    join, _ = publish.build_envelope(
        app, JOIN_TASK, [body.as_dict(), [r.id for r in header_results]], {},
        SendOptions(queue=fixed["queue"], priority=fixed["priority"], ignore_result=True,
                    group_id=group_id, root_id=options.get("root_id"), parent_id=options.get("parent_id")))
    ref = ChordRef(group_id, join.queue, join.priority)
    app.broker.chord_start(group_id, len(header), message.encode(join, signing_key=app.signing_key),
                           queue=ref.queue, priority=ref.priority, ttl=chord_ttl(app))
    for member in header:
        member.apply_async(chord=ref, group_id=group_id, **options)
    return result


def apply_chord(app: Celery, header: list[Signature], body: Signature, options: dict[str, Any]) -> EagerResult[Any]:
    """Eager: run the header here, then the body with its results (or fail it as a worker would)."""
    from ..publish import new_task_id
    from ..result import EagerResult, GroupResult

    group_id = new_task_id()
    throw = options.pop("throw", None)
    results = [member.apply(group_id=group_id, throw=False, **options) for member in header]
    failed = next((r for r in results if not r.successful()), None)
    if failed is None:
        outcome = body.apply(([r.get() for r in results],), throw=throw)
    else:
        exc = ChordError(f"Dependency {failed.id} raised {failed.result!r}")
        meta = fail_body(app, body, exc)
        propagate = app.conf.task_eager_propagates if throw is None else throw
        if propagate:
            raise exc
        outcome = EagerResult(body.id or new_task_id(), meta, app=app)
    outcome.parent = GroupResult(group_id, results, app=app)
    return outcome


def join(task: Task[Any, Any], body: dict[str, Any], ids: list[str]) -> None:
    """The join message's task: send the body with the header's results, in header order."""
    from ..result import rebuild_exception

    app = task.app
    sig = signature(body, app=app)
    request = task.request
    if request.group:  # members a header task added while it ran (Task.add_to_chord) come last
        ids = [*ids, *app.broker.chord_added(request.group, queue=request.delivery_info.get("queue") or "")]
    metas = app.backend.get_many(ids)
    # A failed member fires the join at once, so other members may still be running: name the
    # failure, not the first member that is not done.
    failed = [(task_id, meta) for task_id, meta in zip(ids, metas, strict=True)
              if meta["status"] in states.PROPAGATE_STATES]
    if failed:
        task_id, meta = failed[0]
        fail_body(app, sig, ChordError(f"Dependency {task_id} raised {rebuild_exception(meta)!r}"))
        return
    for task_id, meta in zip(ids, metas, strict=True):
        if meta["status"] != states.SUCCESS:  # counted, yet no result kept (ignore_result)
            why = f"Dependency {task_id} has no stored result (state {meta['status']}; ignore_result?)"
            fail_body(app, sig, ChordError(why))
            return
    sig.apply_async(([meta.get("result") for meta in metas],), parent_id=request.id,
                    root_id=request.root_id)


def add_to_chord(task: Task[Any, Any], sig: Signature, lazy: bool) -> Signature | AsyncResult[Any]:
    """``Task.add_to_chord``: the chord that ``task`` (a header task, running) counts into
    expects ``sig`` too, before ``sig`` is sent. Its id comes from the adding task's id and how
    many it added so far, so a re-run of the adding task after its worker died adds and sends
    the same member, which counts once, rather than leaving the chord waiting for one that
    was counted in but never sent."""
    request = task.request
    envelope = request.envelope
    ref = envelope.flow.chord if envelope is not None and envelope.flow is not None else None
    if ref is None:
        raise ValueError("Current task is not member of any chord")
    added = request.__dict__.get("chord_added", 0)
    request.__dict__["chord_added"] = added + 1
    member_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"celeriac:add_to_chord:{request.id}:{added}"))
    sig.set(group_id=request.group, root_id=request.root_id, parent_id=request.id)
    result = sig.freeze(member_id)
    if task.app.broker.chord_grow(ref.id, result.id, queue=ref.queue):
        sig.set(chord=ref)
    else:  # the chord fired already (a member failed): as in Celery, the task runs uncounted
        logger.warning("chord %s already completed: %s[%s] runs outside it", ref.id, sig.task, result.id)
    return sig if lazy else sig.delay()


def fail_body(app: Celery, body: Signature, exc: ChordError) -> dict[str, Any]:
    """Record the body FAILURE with ``exc`` and call its errbacks, as if it had raised it."""
    from ..execution import exception_fields
    from ..task import Context
    from .followups import call_errbacks

    body_id = body.id or ""
    meta: dict[str, Any] = {"task_id": body_id, "status": states.FAILURE, "name": body.task, "result": str(exc),
                            **exception_fields(exc, f"ChordError: {exc}")}
    if body_id:
        app.backend.write([(body_id, message.dumps(meta), True)])
    request = Context(id=body_id, task=body.task, args=list(body.args), kwargs=body.kwargs,
                      called_directly=False, group=body.options.get("group_id"))
    call_errbacks(app, body.options.get("link_error") or [], request, exc, None)
    return meta
