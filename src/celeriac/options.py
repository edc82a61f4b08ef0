"""The sending options of one call: one frozen object instead of the same dozen keyword
arguments repeated by ``Task.apply_async``, ``Celery.send_task`` and ``publish.build_envelope``.

``apply_async(args, kwargs, countdown=10, queue="q")`` keeps Celery's keywords; they become a
:class:`SendOptions` once, at the edge, and travel as that object down to the envelope. Celery
options with no meaning here (``exchange``, ``producer``, ...) are accepted and dropped, so calls
port unchanged; a name that is neither is a one-line error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from .exceptions import ConfigurationError

# Options Celery's send_task takes that carry no meaning here; accepted so calls port unchanged.
INERT = frozenset({
    "exchange", "compression", "producer", "connection", "publisher", "router",
    "result_cls", "add_to_parent", "reply_to", "route_name", "shadow", "mandatory", "immediate",
    "delivery_mode", "exchange_type", "declare", "group_index", "replaced_task_nesting",
    "chord_size", "subtask_type", "immutable",
})


class SendOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to send one task. ``None`` means "not given": routes, the task and the settings decide."""

    countdown: float | None = None
    eta: datetime | float | None = None
    expires: float | datetime | None = None
    priority: int | None = None
    queue: Any = None  # a name or a Queue object (kombu's or celeriac's)
    routing_key: str | None = None
    task_id: str | None = None
    headers: dict[str, Any] | None = None
    ignore_result: bool | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    serializer: str | None = None
    retry: bool | None = None
    retry_policy: dict[str, Any] | None = None
    #: Signatures (or their dicts) to call with the result on success / with the error on failure.
    link: tuple[Any, ...] = ()
    link_error: tuple[Any, ...] = ()
    # Set by canvas and retries, not by users.
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    retries: int = 0
    chain: tuple[Any, ...] = ()  # the steps still to run after this task, next first
    chord: Any = None  # this task is a chord header member: a message.ChordRef
    # Signature.stamp's labels: the names, and name -> value (each name is an option of its own
    # in Celery's calls, listed in ``stamped_headers``).
    stamped_headers: tuple[str, ...] = ()
    stamps: dict[str, Any] | None = None

    @classmethod
    def of(cls, name: str, given: Mapping[str, Any]) -> SendOptions:
        """Options from Celery-style keywords; ``name`` is the task named in errors."""
        fields: dict[str, Any] = {}
        stamped = given.get("stamped_headers") or ()
        if isinstance(stamped, str):
            stamped = (stamped,)
        for key, value in given.items():
            if key in stamped and key not in _FIELDS:
                fields.setdefault("stamps", {})[key] = value
            elif key in _FIELDS:
                if key in ("link", "link_error", "chain"):
                    value = as_signatures(value)
                if key == "stamped_headers":
                    value = tuple(stamped)
                if value is not None:
                    fields[key] = value
            elif key not in INERT:
                from .config import suggest

                raise ConfigurationError(f"send_task({name!r}): unknown option {key!r}{suggest(key, set(_FIELDS))}")
        return cls(**fields)

    def merged(self, name: str, given: Mapping[str, Any]) -> SendOptions:
        """These options with ``given`` keywords taking precedence (``None`` values ignored)."""
        if not given:
            return self
        update = SendOptions.of(name, given)
        changes = {f: getattr(update, f) for f in update.__struct_fields__
                   if (f in given or (f == "stamps" and update.stamps)) and getattr(update, f) != _DEFAULTS[f]}
        return msgspec.structs.replace(self, **changes) if changes else self


def put_stamps(headers: dict[str, Any], opts: SendOptions) -> None:
    """Add ``opts``' stamps to a message's ``headers`` as Celery's messages carry them: the
    names under ``stamped_headers``, name -> value under ``stamps``."""
    stamps = opts.stamps or {}
    headers["stamped_headers"] = list(opts.stamped_headers)
    headers["stamps"] = {name: stamps.get(name) for name in opts.stamped_headers}


def as_signatures(value: Any) -> tuple[Any, ...]:
    """A ``link``/``link_error``/``chain`` option as a tuple: None, one signature (a dict) or several."""
    if value is None:
        return ()
    if isinstance(value, dict):  # one signature (a dict subclass)
        return (value,)
    return tuple(value)


_FIELDS = frozenset(SendOptions.__struct_fields__)
_DEFAULTS = {f: getattr(SendOptions(), f) for f in SendOptions.__struct_fields__}
