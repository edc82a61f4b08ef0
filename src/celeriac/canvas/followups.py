"""What follows a finished task: the one place the worker (and eager mode) decides it.

A task's message carries a :class:`~celeriac.message.Flow` only when something follows it, so
a plain task never reaches this module: the worker checks ``envelope.flow is not None`` and
nothing else. For the others, :func:`conclude` runs once the outcome is known and its result
record made:

- success: each ``link`` is sent with the result as its first argument, then the chain's next
  step (carrying the rest of the chain); both become the task's ``children``, as in Celery;
- failure: each ``link_error`` is called, and the chain stops there;
- a chord header task (success or failure) is counted into its chord in one atomic step with
  storing its result (:meth:`Coordination.chord_part`), so its record is not left to the flusher.
  A failure fails the chord at once, as in Celery; so does a header task that never runs
  (revoked, expired or dead-lettered: :func:`never_ran`), which would otherwise leave its chord
  waiting until it expires.

Errbacks follow Celery: one whose task takes more than one argument is called here, in the
worker, with ``(request, exc, traceback)``; any other is sent with the failed task's id.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import message, states
from ..argtypes import untag
from .signature import Signature, signature

if TYPE_CHECKING:
    from ..app import Celery
    from ..execution import Outcome
    from ..message import ChordRef, Envelope
    from ..result import AsyncResult
    from ..task import Context, Task

logger = logging.getLogger("celeriac.task")

Record = tuple[str, bytes, bool]


def conclude(app: Celery, task: Task[Any, Any], context: Context, outcome: Outcome,
             records: list[Record], *, eager: bool = False) -> list[Record]:
    """Send or call what follows ``context``'s task; returns the records still to store."""
    flow = context.envelope.flow if context.envelope is not None else None
    if flow is None:
        return records
    state = outcome.state
    if state == states.SUCCESS:
        value = outcome.result
        options: dict[str, Any] = {"parent_id": context.id, "root_id": context.root_id}
        sent = [_start(signature(untag(callback), app=app), (value,), options, eager) for callback in flow.link]
        if flow.chain:
            rest = flow.chain[1:]
            sent.append(_start(signature(untag(flow.chain[0]), app=app), (value,), {**options, "chain": rest}, eager))
        records = _with_children(records, context.id or "", [r.id for r in sent])
    elif state == states.FAILURE and flow.link_error:
        call_errbacks(app, [untag(e) for e in flow.link_error], context, outcome.exc, outcome.traceback, eager)
    if flow.chord is not None and state in states.READY_STATES and not eager:
        ref = flow.chord
        app.broker.chord_part(ref.id, context.id or "", queue=ref.queue, priority=ref.priority,
                              records=records, backend=app.backend, failed=state != states.SUCCESS)
        return []
    return records


def never_ran(app: Celery, envelope: Envelope, records: list[Record]) -> list[Record]:
    """A task the worker will not run (revoked, expired, dead-lettered): if it is a chord's
    header task, count it as failed, storing ``records`` with the count; returns the records
    still to store."""
    return count_failed(app, envelope.flow.chord if envelope.flow is not None else None, envelope.id, records)


def count_failed(app: Celery, ref: ChordRef | None, task_id: str, records: list[Record]) -> list[Record]:
    """Count ``task_id`` as a failed member of chord ``ref`` (if any) with its ``records``;
    returns the records still to store. The supervisor calls it for a header task it ends itself
    (terminated, hard time limit, its process lost), from the chord its slot names."""
    if ref is None:
        return records
    app.broker.chord_part(ref.id, task_id, queue=ref.queue, priority=ref.priority, records=records,
                          backend=app.backend, failed=True)
    return []


def _start(sig: Signature, args: tuple[Any, ...], options: dict[str, Any], eager: bool) -> AsyncResult[Any]:
    return sig.apply(args, **options) if eager else sig.apply_async(args, **options)


def _with_children(records: list[Record], task_id: str, ids: list[str]) -> list[Record]:
    """Add the links and the chain's next step to the task's ``children``, as Celery's worker
    does (it sends them before storing the result). Only canvas tasks pay the re-encoding."""
    if not ids:
        return records
    out = []
    for record_id, data, ready in records:
        if record_id == task_id:
            meta = message.loads(data)
            meta["children"] = [*(meta.get("children") or ()), *ids]
            data = message.dumps(meta)
        out.append((record_id, data, ready))
    return out


def call_errbacks(app: Celery, errbacks: Sequence[Any], request: Context, exc: BaseException | None,
                  traceback: str | None, eager: bool = False) -> None:
    """Call each errback as Celery does; an errback that raises is logged, never the worker's end."""
    old_style: list[Signature] = []
    for errback in errbacks:
        sig = signature(errback, app=app)
        task = app.tasks.get(sig.task)
        if task is not None and _takes_request(task):
            try:
                sig(request, exc, traceback)
            except Exception:
                logger.exception("errback %r of task %s raised", sig, request.id)
        else:
            old_style.append(sig)
    for sig in old_style:
        options: dict[str, Any] = {"parent_id": request.id, "root_id": request.root_id or request.id}
        if eager:
            sig.apply((request.id,), **options)
        else:
            sig.apply_async((request.id,), **options)


def _takes_request(task: Task[Any, Any]) -> bool:
    """Whether an errback task takes ``(request, exc, traceback)``: more than one positional
    parameter, as Celery judges it (``self`` of a bound task not counted)."""
    try:
        parameters = list(inspect.signature(task.run).parameters.values())
    except (TypeError, ValueError):
        return False
    if task.bind and parameters:
        parameters = parameters[1:]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) > 1 or any(p.kind is p.VAR_POSITIONAL for p in positional)
