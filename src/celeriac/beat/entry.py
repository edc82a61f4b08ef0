"""One periodic job: what to send, when, and what to do about runs missed while beat was down."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..exceptions import ConfigurationError
from ..schedules import BaseSchedule, as_schedule, from_dict

MISSED_POLICIES = ("once", "skip")

# Keys of a beat_schedule entry: Celery's, plus ``missed``.
ENTRY_KEYS = ("task", "schedule", "args", "kwargs", "options", "relative", "missed")

# send_task options that make sense for a periodic send. Routing names Celery users carry over
# (exchange, routing_key, ...) are accepted and mean nothing, as in send_task.
SEND_OPTIONS = frozenset({
    "queue", "priority", "expires", "countdown", "time_limit", "soft_time_limit", "headers",
    "ignore_result", "serializer", "retry", "retry_policy",
    "exchange", "routing_key", "exchange_type", "delivery_mode", "compression", "mandatory", "immediate",
})


@dataclass(frozen=True, slots=True)
class Entry:
    """A periodic job. ``source`` is ``"code"`` (beat_schedule, add_periodic_task) or ``"runtime"``
    (added through :class:`celeriac.beat.Schedule`, kept in the broker)."""

    name: str
    task: str
    schedule: BaseSchedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    missed: str = "once"
    source: str = "code"
    paused: bool = False

    def to_json(self) -> bytes:
        """The stored form of a run-time entry."""
        data = {"task": self.task, "schedule": self.schedule.to_dict(), "args": list(self.args),
                "kwargs": self.kwargs, "options": self.options, "missed": self.missed}
        try:
            return json.dumps(data, sort_keys=True).encode()
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"beat entry {self.name!r}: args, kwargs and options must be JSON "
                                     f"to be kept in the broker ({exc})") from None

    @classmethod
    def from_json(cls, name: str, raw: bytes, default_missed: str) -> Entry:
        data = json.loads(raw)
        return parse(name, {**data, "schedule": from_dict(data["schedule"])}, default_missed, source="runtime")


def parse(name: str, spec: Any, default_missed: str = "once", source: str = "code") -> Entry:
    """Check one beat_schedule entry; a bad one raises ConfigurationError naming it and the field."""
    where = f"beat_schedule[{name!r}]"
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"beat_schedule: entry names must be non-empty strings, not {name!r}")
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where}: an entry is a dict with 'task' and 'schedule', not {type(spec).__name__}")
    for key in spec:
        if key not in ENTRY_KEYS:
            raise ConfigurationError(f"{where}: unknown key {key!r}{_suggest(key, ENTRY_KEYS)}")
    task = spec.get("task")
    task = getattr(task, "name", task)  # a task object works as well as its name
    if not isinstance(task, str) or not task:
        raise ConfigurationError(f"{where}: 'task' must be the task's name, not {task!r}")
    if "schedule" not in spec:
        raise ConfigurationError(f"{where}: 'schedule' is missing (seconds, a timedelta or crontab(...))")
    try:
        schedule = as_schedule(spec["schedule"])
        schedule.check()
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: 'schedule': {exc}") from None
    args = spec.get("args") or ()
    if not isinstance(args, (list, tuple)):
        raise ConfigurationError(f"{where}: 'args' must be a list or tuple, not {type(args).__name__}")
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"{where}: 'kwargs' must be a dict, not {type(kwargs).__name__}")
    options = dict(spec.get("options") or {})
    for key in options:
        if key not in SEND_OPTIONS:
            hint = " (put 'missed' beside 'task', not in 'options')" if key == "missed" else \
                _suggest(key, SEND_OPTIONS)
            raise ConfigurationError(f"{where}: unknown option {key!r}{hint}")
    _check_options(where, options)
    missed = spec.get("missed") or default_missed
    if missed not in MISSED_POLICIES:
        raise ConfigurationError(f"{where}: 'missed' must be 'once' or 'skip', not {missed!r}")
    return Entry(name=name, task=task, schedule=schedule, args=tuple(args), kwargs=dict(kwargs),
                 options=options, missed=missed, source=source)


def _check_options(where: str, options: dict[str, Any]) -> None:
    priority = options.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                 or not 0 <= priority <= 9):
        raise ConfigurationError(f"{where}: option 'priority' must be a whole number 0-9, not {priority!r}")
    queue = options.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigurationError(f"{where}: option 'queue' must be a queue name, not {queue!r}")
    expires = options.get("expires")
    if isinstance(expires, timedelta):
        options["expires"] = expires.total_seconds()  # relative to each send, as Celery's beat does
    elif expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))
                                  or expires <= 0):
        raise ConfigurationError(f"{where}: option 'expires' must be seconds after each send, not {expires!r}")


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def code_entries(app: Any) -> dict[str, Entry]:
    """The entries the app declares (beat_schedule, and add_periodic_task calls made when the app
    is finalized, the ``on_after_configure`` pattern)."""
    app.finalize()
    default = default_missed(app)
    table = app.conf.beat_schedule or {}
    return {name: parse(name, spec, default) for name, spec in table.items()}


def default_missed(app: Any) -> str:
    policy = app.conf.beat_missed_policy
    if policy not in MISSED_POLICIES:
        raise ConfigurationError(f"setting 'beat_missed_policy' must be 'once' or 'skip', not {policy!r}")
    return str(policy)
