"""Folding events into the latest state of each task and worker.

Events reach a reader out of order more often than one would think: a pool process writes its
task events in batches, while ``update_state`` writes ``task-progress`` at once, so a task's
progress can be read before its ``task-started``; ``task-sent`` comes from the caller's clock.
So a task's state moves to an event's state only when the event is newer than the one that set
the current state; but a final state (SUCCESS, FAILURE, REVOKED, REJECTED) always ends an
unfinished one and gives way only to another final one, and ``task-sent`` never undoes what a
worker reported, whatever the clocks say. Every other field an event carries is merged whatever
its age.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from .. import states

Event = dict[str, Any]

DEAD_LETTERED = "task-dead-lettered"

#: The state each task event moves a task to (``task-progress`` carries its own, e.g. PROGRESS).
STATE_OF = {"task-sent": states.PENDING, "task-received": states.RECEIVED, "task-started": states.STARTED,
            "task-progress": "PROGRESS", "task-succeeded": states.SUCCESS, "task-failed": states.FAILURE,
            "task-retried": states.RETRY, "task-revoked": states.REVOKED, "task-rejected": states.REJECTED,
            # The worker also stores FAILURE with the reason for a dead-lettered task that has an id.
            DEAD_LETTERED: states.FAILURE}

#: The task field that records when each event happened (Flower's names).
TIME_OF = {"task-sent": "sent", "task-received": "received", "task-started": "started",
           "task-succeeded": "succeeded", "task-failed": "failed", "task-retried": "retried",
           "task-revoked": "revoked", "task-rejected": "rejected", DEAD_LETTERED: "dead_lettered"}

# Event fields copied as they are; ``hostname`` becomes ``worker``.
_COPIED = ("name", "args", "kwargs", "retries", "eta", "expires", "queue", "priority", "runtime", "result",
           "exception", "traceback", "reason", "call", "root_id",
           "parent_id")


def task_state(event: Event) -> str | None:
    """The state a task event moves its task to; None for events that are not task events."""
    kind = event.get("type")
    if kind == "task-progress":
        return str(event.get("state") or "PROGRESS")
    return STATE_OF.get(kind) if isinstance(kind, str) else None


@dataclass(slots=True)
class TaskRecord:
    """What the events said about one task. Times are float epoch seconds."""

    uuid: str
    name: str | None = None
    state: str = states.PENDING
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    succeeded: float | None = None
    failed: float | None = None
    retried: float | None = None
    revoked: float | None = None
    rejected: float | None = None
    dead_lettered: float | None = None
    timestamp: float | None = None      # the newest event's time
    state_time: float | None = None     # the time of the event that set ``state``
    args: str | None = None             # repr strings, as the worker showed them (redacted)
    kwargs: str | None = None
    retries: int = 0
    eta: float | None = None
    expires: float | None = None
    worker: str | None = None
    client: str | None = None           # who sent it (task-sent's hostname)
    queue: str | None = None
    priority: int | None = None
    runtime: float | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    reason: str | None = None           # why it was dead-lettered
    progress: Any = None                # the meta of the last custom state (PROGRESS)
    # The arguments as JSON, {"args", "kwargs"[, "redacted": true]} (task-received's ``call``):
    # what a retry from the dashboard sends again. None when the worker did not copy them.
    call: Any = None
    root_id: str | None = None
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    # [time, event type, detail] per event, in the order read: the retries and their reasons,
    # progress updates, where it ran. Bounded: progress entries go first when it is full.
    timeline: list[list[Any]] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        kind = str(event.get("type"))
        stamp = _float(event.get("timestamp"))
        new_state = task_state(event)
        when = TIME_OF.get(kind)
        if when is not None and stamp is not None:
            setattr(self, when, stamp)
        for key in _COPIED:
            value = event.get(key)
            if value is not None:
                setattr(self, key, value)
        if event.get("hostname"):
            if kind == "task-sent":  # the caller, not a worker
                self.client = str(event["hostname"])
            else:
                self.worker = str(event["hostname"])
        if kind == "task-received":  # the caller's send time and origin, carried by the worker
            if self.sent is None:
                self.sent = _float(event.get("sent"))
            if self.client is None and event.get("client"):
                self.client = str(event["client"])
        if kind == "task-progress":
            self.progress = event.get("meta")
        if stamp is not None and (self.timestamp is None or stamp > self.timestamp):
            self.timestamp = stamp
        if new_state is not None and self._moves_to(new_state, stamp):
            self.state = new_state
            self.state_time = stamp
        if new_state is not None:
            self._note(kind, stamp, event)

    def _note(self, kind: str, stamp: float | None, event: Event) -> None:
        self.timeline.append([stamp, kind, _detail(kind, event)])
        if len(self.timeline) > MAX_TIMELINE:
            progress = next((i for i, e in enumerate(self.timeline) if e[1] == "task-progress"), None)
            del self.timeline[progress if progress is not None else 1]  # the first entry says how it began

    def _moves_to(self, new: str, stamp: float | None) -> bool:
        if self.state_time is None:
            return True
        if self.state in states.READY_STATES and new not in states.READY_STATES:
            return False
        if new in states.READY_STATES and self.state not in states.READY_STATES:
            return True  # how it ended, from whichever clock: nothing comes after that
        if new == states.PENDING and self.state != states.PENDING:
            # ``task-sent`` is stamped by the caller's clock, which may run ahead of the
            # worker's: whatever a worker said of the task happened after it was sent.
            return False
        return stamp is None or stamp >= self.state_time

    @property
    def finished(self) -> float | None:
        """When it reached its final state; None while it is not final."""
        if self.state == states.SUCCESS:
            return self.succeeded
        if self.state == states.FAILURE:
            return self.failed or self.dead_lettered
        if self.state == states.REVOKED:
            return self.revoked
        if self.state == states.REJECTED:
            return self.rejected
        return None

    @property
    def wait(self) -> float | None:
        """Seconds from sent (or, without task-sent events, received) to started."""
        begun = self.sent if self.sent is not None else self.received
        if begun is None or self.started is None:
            return None
        return max(self.started - begun, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        return cls(**{k: v for k, v in data.items() if k in RECORD_FIELDS})


RECORD_FIELDS = tuple(f.name for f in fields(TaskRecord))
MAX_TIMELINE = 50
MAX_CHILDREN = 1000
DETAIL_CHARS = 200


def _detail(kind: str, event: Event) -> str | None:
    """One short line on what an event adds to a task's story."""
    text: Any
    if kind == "task-progress":
        meta = event.get("meta")
        if isinstance(meta, dict) and ("progress" in meta or "message" in meta):
            text = " ".join(str(p) for p in (f"{meta.get('progress')}%" if "progress" in meta else None,
                                             meta.get("message")) if p)
        else:
            text = f"{event.get('state') or 'PROGRESS'} {meta!r}" if meta is not None else None
    elif kind == "task-retried":
        countdown = event.get("countdown")
        text = f"{event.get('exception')}" + (f"; again in {float(countdown):g} s" if countdown is not None else "")
    elif kind in ("task-failed", "task-rejected"):
        text = event.get("exception")
    elif kind == "task-dead-lettered":
        text = event.get("reason")
    elif kind == "task-revoked":
        text = "expired" if event.get("expired") else "terminated" if event.get("terminated") else event.get("reason")
    elif kind == "task-succeeded" and event.get("runtime") is not None:
        text = f"in {float(event['runtime']):.3f} s"
    elif kind in ("task-received", "task-started"):
        text = event.get("hostname")
    else:
        text = None
    return None if text is None else str(text)[:DETAIL_CHARS]


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


class TaskStates:
    """The latest state of the most recently changed tasks, at most ``keep`` of them.

    ``load`` (optional) is asked for a task this fold does not hold, so a fold that forgot a task
    (or a process that restarted) continues from what was stored instead of from nothing.
    """

    def __init__(self, keep: int = 10_000, load: Callable[[str], TaskRecord | None] | None = None) -> None:
        self.keep = keep
        self.load = load
        self.tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self.counts: Counter[str] = Counter()  # events seen, by type
        # Ids the caller already looked up in bulk and found nowhere: ``load`` would find nothing.
        self.unknown: set[str] = set()
        # Records changed by another task's event (a parent that gained a child) since the caller
        # last emptied this list.
        self.touched: list[TaskRecord] = []

    def apply(self, event: Event) -> TaskRecord | None:
        """Fold one event in; returns the task it changed (None for worker and unknown events)."""
        kind = event.get("type")
        if isinstance(kind, str):
            self.counts[kind] += 1
        task_id = event.get("uuid")
        if task_state(event) is None or not task_id:
            return None
        task_id = str(task_id)
        record = self.tasks.pop(task_id, None)
        if record is None and self.load is not None and task_id not in self.unknown:
            record = self.load(task_id)
        if record is None:
            record = TaskRecord(task_id)
        self.tasks[task_id] = record  # most recently changed last
        record.apply(event)
        if kind == "task-received" and record.parent_id:
            self._adopt_child(record.parent_id, task_id)
        while len(self.tasks) > self.keep:
            self.tasks.popitem(last=False)
        return record

    def _adopt_child(self, parent_id: str, child_id: str) -> None:
        # Flower lists a task's children; the child's events name the parent, so the parent's
        # record is changed here too (the caller stores ``touched`` with the batch).
        parent = self.tasks.get(parent_id)
        if parent is None and self.load is not None and parent_id not in self.unknown:
            parent = self.load(parent_id)
            if parent is not None:
                self.tasks[parent_id] = parent
        if parent is not None and child_id not in parent.children and len(parent.children) < MAX_CHILDREN:
            parent.children.append(child_id)
            self.touched.append(parent)

    def get(self, task_id: str) -> TaskRecord | None:
        return self.tasks.get(task_id)

    def missing(self, events: list[Event]) -> set[str]:
        """Ids of tasks these events are about that this fold does not hold."""
        return {str(e["uuid"]) for e in events if e.get("uuid") and str(e["uuid"]) not in self.tasks}

    def adopt(self, records: list[TaskRecord]) -> None:
        """Hold these records (loaded in bulk by the caller) so folding them asks ``load`` nothing."""
        for record in records:
            self.tasks[record.uuid] = record
        while len(self.tasks) > self.keep:
            self.tasks.popitem(last=False)

    def recent(self, n: int | None = None) -> list[TaskRecord]:
        """The ``n`` most recently changed tasks, newest first."""
        records = list(self.tasks.values())
        return list(reversed(records if n is None else records[-n:]))

    def __iter__(self) -> Iterator[TaskRecord]:
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)


@dataclass(slots=True)
class WorkerRecord:
    """A worker as its events show it: the last heartbeat's info and when it was seen."""

    hostname: str
    info: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0
    online: bool = False

    def alive(self, now: float | None = None, grace: float = 10.0) -> bool:
        return self.online and (now if now is not None else time.time()) - self.last_seen <= grace


class WorkerStates:
    """Workers seen in ``worker-*`` events, by hostname."""

    def __init__(self) -> None:
        self.workers: dict[str, WorkerRecord] = {}

    def apply(self, event: Event) -> WorkerRecord | None:
        kind, hostname = event.get("type"), event.get("hostname")
        if kind not in ("worker-online", "worker-heartbeat", "worker-offline") or not hostname:
            return None
        record = self.workers.setdefault(str(hostname), WorkerRecord(str(hostname)))
        stamp = _float(event.get("timestamp")) or 0.0
        if stamp < record.last_seen:
            return record  # an older event read late says nothing new
        record.last_seen = stamp
        record.online = kind != "worker-offline"
        record.info.update({k: v for k, v in event.items() if k not in ("type", "timestamp")})
        return record
