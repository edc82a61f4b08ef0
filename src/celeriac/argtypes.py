"""Argument and result types JSON has no word for, carried as Celery's JSON (kombu) carries them.

``datetime``, ``date``, ``time``, ``Decimal``, ``UUID`` and ``bytes`` travel as
``{"__type__": "<kind>", "__value__": ...}`` and come back as the same type, so a task gets what
the caller passed, and a message from or to a Celery 5 process reads the same. Anything else JSON
cannot carry is still refused at the call, naming the argument.

Cost: encoding walks the arguments once (plain values return at the first type check);
decoding walks them only when the bytes contain the marker, so messages without these types pay
one substring search.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

MARKER = b'"__type__"'

_PLAIN = frozenset({str, int, float, bool, type(None)})


def _tagged(value: Any) -> dict[str, Any] | None:
    kind = type(value)
    if kind is datetime or isinstance(value, datetime):
        return {"__type__": "datetime", "__value__": value.isoformat()}
    if kind is date or isinstance(value, date):
        return {"__type__": "date", "__value__": value.isoformat()}
    if isinstance(value, time):
        return {"__type__": "time", "__value__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__type__": "decimal", "__value__": str(value)}
    if isinstance(value, uuid.UUID):
        return {"__type__": "uuid", "__value__": {"hex": value.hex}}
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return {"__type__": "bytes", "__value__": raw.decode("utf-8")}
        except UnicodeDecodeError:
            return {"__type__": "base64", "__value__": base64.b64encode(raw).decode("ascii")}
    return None


def tag(value: Any) -> Any:
    """``value`` with every special-typed value inside replaced by its tagged form; the very
    same object when there is none (no copy on the common path)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:
        out: list[Any] | None = None
        for index, item in enumerate(value):
            if type(item) in _PLAIN:  # the common case, without a call
                continue
            new = tag(item)
            if new is not item:
                if out is None:
                    out = list(value)
                out[index] = new
        return value if out is None else out
    if kind is dict:
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(item) in _PLAIN:
                continue
            new = tag(item)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    tagged = _tagged(value)
    return value if tagged is None else tagged


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": lambda v: datetime.fromisoformat(v).date(),
    "time": time.fromisoformat,
    "decimal": Decimal,
    "uuid": lambda v: uuid.UUID(**v),
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v.encode("ascii")),
}


def untag(value: Any) -> Any:
    """The inverse of :func:`tag`, in place for lists and dicts decoded from JSON."""
    if type(value) is list:
        for index, item in enumerate(value):
            value[index] = untag(item)
        return value
    if type(value) is dict:
        if len(value) == 2 and "__type__" in value and "__value__" in value:
            decoder = _DECODERS.get(value["__type__"])
            if decoder is not None:
                try:
                    return decoder(value["__value__"])
                except (TypeError, ValueError, ArithmeticError):
                    return value  # not ours after all: leave the dict as it came
        for key, item in value.items():
            value[key] = untag(item)
        return value
    return value
