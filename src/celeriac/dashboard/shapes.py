"""Flower's shapes: the 31-key task dict, from the history or from the result store.

Scripts written against Flower index these keys and parse these types (float epoch seconds,
Python repr strings for args/kwargs/result, ISO-8601 for eta/expires), so every key is always
present. celeriac adds ``queue``, ``priority``, ``progress``, ``dead_lettered`` and ``reason``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .. import states
from ..events import safe_repr
from ..monitor.state import TaskRecord
from ..redaction import Redactor

FLOWER_TASK_KEYS = (
    "uuid", "name", "state", "received", "sent", "started", "rejected", "succeeded", "failed", "retried",
    "revoked", "args", "kwargs", "eta", "expires", "retries", "worker", "result", "exception", "timestamp",
    "runtime", "traceback", "exchange", "routing_key", "clock", "client", "root", "root_id", "parent",
    "parent_id", "children")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(float(ts), UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


_STRING = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN, _CLOSE = frozenset("([{"), frozenset(")]}")


def _several(inner: str) -> bool:
    """Whether a list's inside holds more than one element: a comma outside brackets and strings."""
    depth = 0
    for char in _STRING.sub("s", inner):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def args_repr(shown: str | None) -> str | None:
    """Positional arguments as Celery shows them, a tuple: ``(2, 3)``. celeriac's events carry
    the message's list (``[2, 3]``); scripts that parse Flower's ``args`` expect the tuple."""
    if not shown or not (shown.startswith("[") and shown.endswith("]")):
        return shown
    inner = shown[1:-1]
    if not inner or _several(inner):
        return f"({inner})"
    return f"({inner},)"


def task_dict(record: TaskRecord) -> dict[str, Any]:
    # A task sent by a client rather than by another task is its own root (Celery's rule).
    root = record.root_id or record.uuid
    return {
        "uuid": record.uuid, "name": record.name, "state": record.state,
        "received": record.received, "sent": record.sent, "started": record.started,
        "rejected": record.rejected, "succeeded": record.succeeded, "failed": record.failed,
        "retried": record.retried, "revoked": record.revoked,
        "args": args_repr(record.args), "kwargs": record.kwargs, "eta": iso(record.eta), "expires": iso(record.expires),
        "retries": record.retries, "worker": record.worker, "result": record.result,
        "exception": record.exception, "timestamp": record.timestamp, "runtime": record.runtime,
        "traceback": record.traceback, "exchange": None, "routing_key": record.queue, "clock": 0,
        "client": record.client, "root": root, "root_id": root, "parent": record.parent_id,
        "parent_id": record.parent_id, "children": list(record.children),
        "queue": record.queue, "priority": record.priority, "progress": record.progress,
        "dead_lettered": record.dead_lettered, "reason": record.reason,
    }


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def record_from_meta(task_id: str, meta: dict[str, Any], redactor: Redactor | None = None,
                     into: TaskRecord | None = None, task: Any = None) -> TaskRecord:
    """What the result store knows of a task, in the history's terms: a new record for a task
    the history never saw (its events were trimmed, or events are off), or ``into`` brought up
    to the store's final state when the event saying so has not arrived (or was lost)."""
    state = str(meta.get("status") or states.PENDING)
    done = _epoch(meta.get("date_done"))
    record = into or TaskRecord(task_id, name=meta.get("name"), worker=meta.get("worker"),
                                retries=int(meta.get("retries") or 0))
    record.state, record.state_time = state, done
    record.timestamp = max(record.timestamp or 0.0, done or 0.0) or None
    record.traceback = meta.get("traceback") or record.traceback
    if ("args" in meta or "kwargs" in meta) and (record.args is None or record.kwargs is None):
        # The store holds result_extended arguments as stored (already redacted by the worker);
        # hiding again costs nothing and covers records written by older workers.
        args, kwargs = meta.get("args") or (), meta.get("kwargs") or {}
        if redactor:
            args, kwargs = redactor.arguments(args, kwargs, task)
        if "args" in meta and record.args is None:
            record.args = safe_repr(tuple(args))
        if "kwargs" in meta and record.kwargs is None:
            record.kwargs = safe_repr(kwargs)
    if state == states.SUCCESS:
        record.result, record.succeeded = safe_repr(meta.get("result")), done
    elif meta.get("exc_type"):
        message = meta.get("exc_message")
        shown = ", ".join(repr(m) for m in message) if isinstance(message, list) else repr(message)
        record.exception = f"{meta['exc_type']}({shown})"
        if state == states.FAILURE:
            record.failed = done
        elif state == states.REVOKED:
            record.revoked = done
        elif state == states.REJECTED:
            record.rejected = done
    elif state not in states.ALL_STATES:
        record.progress = meta.get("result")  # a custom state's meta (PROGRESS)
    return record


def timeline(record: TaskRecord) -> list[tuple[float | None, str, str | None]]:
    """The record's timeline oldest first (events are read out of order across processes)."""
    entries = [(entry[0], str(entry[1]), entry[2]) for entry in record.timeline if len(entry) == 3]
    return sorted(entries, key=lambda e: -1.0 if e[0] is None else float(e[0]))

