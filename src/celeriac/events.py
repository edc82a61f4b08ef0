"""The event stream: task and worker events in a capped log in the broker.

Events are written where they happen (``task-sent`` by the caller, task events by the pool
process that runs the task, worker events by the supervisor) to the broker log ``events``,
capped by bytes: ``event_stream_max_bytes`` (64 MB by default). Logs are capped by entries, so
each writer turns the byte bound into an entry count from the running mean size of what it
appends (:class:`EventCap`); ``event_stream_maxlen`` bounds the entries as well. Readers
(``celeriac events``, the dashboard, metrics) read the log from wherever they left off through
:mod:`celeriac.monitor`, so history survives the restart of anything reading it.

Field names follow Celery's events (``uuid``, ``name``, ``args``, ``kwargs``, ``retries``,
``runtime``, ``result``, ``exception``, ``traceback``, ``hostname``, ``timestamp``), so tools
written for Celery's event dicts read these too.
"""

from __future__ import annotations

import os
import time
from array import array
from typing import Any

import msgspec

from .argtypes import tag

EVENT_LOG = "events"

TASK_EVENTS = ("task-sent", "task-received", "task-started", "task-progress", "task-succeeded",
               "task-failed", "task-retried", "task-revoked", "task-rejected", "task-dead-lettered")
WORKER_EVENTS = ("worker-online", "worker-heartbeat", "worker-offline")

_encode = msgspec.json.encode
_decode = msgspec.json.decode

_JSON_ATOMS = (str, int, float, bool, type(None))

MAX_REPR = 1024


def safe_repr(value: Any, limit: int = MAX_REPR) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def event(type: str, **fields: Any) -> bytes:
    """One encoded event. Values are kept JSON-safe: anything else is shown by its repr."""
    fields["type"] = type
    fields.setdefault("timestamp", time.time())
    fields.setdefault("pid", os.getpid())
    try:
        return _encode(fields)
    except (TypeError, msgspec.EncodeError):
        return _encode({k: (v if isinstance(v, _JSON_ATOMS) else safe_repr(v)) for k, v in fields.items()})


# What a log entry costs beyond its data: the entry id, the field name and the stream's
# per-entry and per-node bookkeeping; then the allocator's rounding of each node up to its size
# class and the node Redis keeps past MAXLEN ~ (measured on Redis 7 with MEMORY USAGE: 10-17 %
# for entries of 0.7-3 KB).
ENTRY_OVERHEAD = 64
SLACK = 1.2


class EventCap:
    """The entry cap that keeps the event log near ``max_bytes``: as many of this writer's own
    latest entries as fit in the bound, then entries before them as fit at their mean size.
    One per writer (process or thread that appends); exact when one writer fills the log, and
    with several each keeps it near the bound for entries like its own.

    The sizes kept are this writer's last entries, in a ring of 4-byte counts that grows up to
    ``max_entries`` (400 KB at the default 100,000). An average of sizes instead let one batch
    far larger than the rest (a flusher that fell behind under load) cut the log to a fraction
    of the bound for dozens of appends after it."""

    __slots__ = ("_budget", "_count", "_kept", "_ring", "_start", "max_bytes", "max_entries")

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes = max(1, int(max_bytes))
        self.max_entries = max(1, int(max_entries))
        self._ring = array("I")
        self._start = 0  # the oldest size kept
        self._count = 0
        self._kept = 0  # bytes the kept entries use
        self._budget = self.max_bytes / SLACK

    @classmethod
    def from_conf(cls, conf: Any) -> EventCap:
        return cls(int(conf.event_stream_max_bytes), int(conf.event_stream_maxlen))

    def __call__(self, data: bytes) -> int:
        """The ``maxlen`` to append ``data`` with."""
        size = min(len(data) + ENTRY_OVERHEAD, 0xFFFFFFFF)
        ring = self._ring
        if self._count == len(ring):  # full: grow it while it may, else the oldest goes
            if len(ring) < self.max_entries:
                if self._start:
                    self._ring = ring = ring[self._start:] + ring[:self._start]
                    self._start = 0
                ring.append(0)
            else:
                self._drop_oldest()
        ring[(self._start + self._count) % len(ring)] = size
        self._count += 1
        self._kept += size
        while self._kept > self._budget and self._count > 1:
            self._drop_oldest()
        # Older entries than this writer has seen (its own from before, or other writers'):
        # as many more as fit, counted at the mean size of what it has seen.
        room = max(0.0, self._budget - self._kept)
        return min(self.max_entries, self._count + int(room * self._count / self._kept))

    def _drop_oldest(self) -> None:
        self._kept -= self._ring[self._start]
        self._start = (self._start + 1) % len(self._ring)
        self._count -= 1


def app_cap(app: Any) -> EventCap:
    """The cap the calling process uses for events it appends outside a worker (task-sent,
    task-progress), kept on the app; rebuilt if the settings changed."""
    conf = app.conf
    cap: EventCap | None = getattr(app, "_event_cap", None)
    if cap is None or cap.max_bytes != int(conf.event_stream_max_bytes) \
            or cap.max_entries != int(conf.event_stream_maxlen):
        cap = EventCap.from_conf(conf)
        app._event_cap = cap
    return cap


class TaskEvent(msgspec.Struct, omit_defaults=True):
    """A task event as a pool process records it: Celery's field names, and fields that do not
    apply left out. Kept as an object until its batch is written, which encodes the whole batch
    in one call; every field is a string or a number, so that call cannot fail on a value."""

    type: str
    uuid: str
    name: str
    hostname: str
    timestamp: float
    pid: int
    args: str | None = None
    kwargs: str | None = None
    retries: int | None = None
    eta: float | None = None
    expires: float | None = None
    queue: str | None = None
    priority: int | None = None
    runtime: float | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    countdown: float | None = None
    requeue: bool | None = None
    expired: bool | None = None
    call: msgspec.Raw | None = None  # task-received: the arguments as JSON (see call_json)
    # task-received only: what Flower's task dict shows of where the call came from.
    sent: float | None = None
    client: str | None = None
    root_id: str | None = None
    parent_id: str | None = None


#: Arguments larger than this (as JSON) are not copied into the event: the log is capped by bytes,
#: and one huge call must not push out the events of thousands of small ones.
CALL_MAX_BYTES = 16 * 1024


class _Call(msgspec.Struct, omit_defaults=True):
    """What :func:`call_json` encodes: ``{"args", "kwargs"}`` and ``"redacted": true`` when so."""

    args: Any
    kwargs: Any
    redacted: bool = False


# Most tasks on the hot path are called without arguments: their call is always these bytes.
_NO_ARGUMENTS = msgspec.Raw(b'{"args":[],"kwargs":{}}')


def call_json(args: Any, kwargs: Any, redactor: Any = None, task: Any = None) -> msgspec.Raw | None:
    """A task's arguments as JSON for ``task-received`` (``{"args", "kwargs"}``, special types
    tagged as in messages), so a reader can send the task again with the same arguments; Celery's
    ``args``/``kwargs`` fields are reprs, which cannot be read back. Secrets are hidden as
    everywhere else, and ``"redacted": true`` says the call cannot be repeated from this copy.
    None when it is larger than :data:`CALL_MAX_BYTES` or cannot be encoded."""
    if not args and not kwargs:
        return _NO_ARGUMENTS  # nothing a redactor could hide
    redacted = False
    if redactor:
        shown_args, shown_kwargs = redactor.arguments(args, kwargs, task)
        # A value that was "***" already is shown the same; it was not hidden, so it may be repeated.
        if list(shown_args) != list(args) or shown_kwargs != kwargs:
            args, kwargs, redacted = shown_args, shown_kwargs, True
    # One struct in one encode call rather than a dict through message.dumps: this runs once per
    # task (tag() returns plain values untouched).
    try:
        data = _encode(_Call(tag(args), tag(kwargs), redacted))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return None
    return msgspec.Raw(data) if len(data) <= CALL_MAX_BYTES else None


def batch(events: list[bytes | TaskEvent]) -> bytes:
    """Several events (encoded, or TaskEvent objects) as one log entry (a JSON array), so a
    worker writes one entry per batch of finished tasks instead of three per task."""
    if len(events) == 1 and isinstance(events[0], bytes):
        return events[0]
    items = [msgspec.Raw(e) if isinstance(e, bytes) else e for e in events]
    try:
        return _encode(items if len(items) > 1 else items[0])
    except (TypeError, msgspec.EncodeError):
        # A field given a value JSON cannot carry must cost that value, not the batch: the
        # flusher writes events with the acks, and an encoding error would stall both.
        safe = [e if isinstance(e, msgspec.Raw) else msgspec.Raw(event(**msgspec.structs.asdict(e)))
                for e in items]
        return _encode(safe if len(safe) > 1 else safe[0])


def decode(data: bytes) -> dict[str, Any]:
    value = _decode(data)
    return value if isinstance(value, dict) else {"type": "unknown", "value": value}


def decode_entry(data: bytes) -> list[dict[str, Any]]:
    """The events in one log entry: a single event, or a batch of them in order."""
    value = _decode(data)
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []
