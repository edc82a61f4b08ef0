"""Celery's task messages (protocol 2, and protocol 1 bodies) as celeriac envelopes.

A kombu message on Redis is JSON: ``body`` (base64 when ``properties.body_encoding`` says so),
``content-type``, ``content-encoding``, ``headers`` (protocol 2 keeps the task's id, name, eta,
expires, retries, root/parent ids there) and ``properties`` (priority, delivery info). The body
of protocol 2 is ``[args, kwargs, embed]``; ``embed`` carries canvas (callbacks, errbacks,
chain, chord), which is refused here rather than dropped: the message stays in Celery.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import json
import lzma
import pickle
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..argtypes import untag
from ..message import Envelope

PICKLE = "application/x-python-serialize"

# Headers of Celery's protocol 2 that describe the task; anything else is the caller's own
# (``apply_async(headers=...)``) and travels on as ``request.headers``.
CELERY_HEADERS = frozenset({
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit",
    "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result", "replaced_task_nesting",
    "stamped_headers", "stamps", "redelivered", "compression",
})

_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "application/x-gzip": zlib.decompress, "gzip": zlib.decompress, "zlib": zlib.decompress,
    "application/x-bz2": bz2.decompress, "bzip2": bz2.decompress,
    "application/x-lzma": lzma.decompress, "lzma": lzma.decompress,
}


class Refused(Exception):
    """A Celery message this cut-over cannot carry; it stays in Celery. The text says why."""


@dataclass(frozen=True, slots=True)
class Converted:
    envelope: Envelope
    #: Seconds from now until the task is due (0 when ready now).
    delay: float
    #: The arguments came pickled (moved only with ``--accept-pickle``).
    pickled: bool
    expired: bool


def message_id(payload: dict[str, Any]) -> str | None:
    """The task id of a kombu payload without decoding its body (protocol 2), else None."""
    headers = payload.get("headers")
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else None


def _instant(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise Refused(f"{what} is {type(value).__name__}, not an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(f"{what} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:  # Celery writes naive times in UTC when enable_utc is on (the default)
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _body(payload: dict[str, Any], accept_pickle: bool) -> tuple[Any, bool]:
    properties = payload.get("properties") or {}
    raw: Any = payload.get("body", "")
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if properties.get("body_encoding") == "base64":
        try:
            data = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise Refused("body is not valid base64") from None
    compression = (payload.get("headers") or {}).get("compression")
    if compression:
        decompress = _DECOMPRESS.get(compression)
        if decompress is None:
            raise Refused(f"compression {compression!r} is not supported")
        data = decompress(data)
    content_type = payload.get("content-type") or "application/json"
    if content_type == "application/json":
        try:
            return untag(json.loads(data.decode(payload.get("content-encoding") or "utf-8"))), False
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(f"JSON body does not decode: {exc}") from None
    if content_type == "application/x-msgpack":
        try:
            return untag(msgspec.msgpack.decode(data)), False
        except msgspec.DecodeError as exc:
            raise Refused(f"msgpack body does not decode: {exc}") from None
    if content_type == PICKLE:
        if not accept_pickle:
            raise Refused("arguments are pickled: unpickling runs code from the broker; "
                          "pass --accept-pickle if you trust everything that wrote to this Redis")
        try:
            return pickle.loads(data), True
        except Exception as exc:
            raise Refused(f"pickled body does not load: {exc!r}") from None
    raise Refused(f"content type {content_type!r} is not supported (json, msgpack, pickle are)")


def _canvas(embed: Any) -> None:
    if isinstance(embed, dict) and any(embed.get(k) for k in ("callbacks", "errbacks", "chain", "chord")):
        raise Refused("the task is part of a canvas (link, chain or chord), which this cut-over does not carry")


def convert(payload: dict[str, Any], queue: str, *, accept_pickle: bool = False, default_priority: int = 0,
            now: float | None = None) -> Converted:
    """The celeriac envelope for one kombu payload found in ``queue``. Raises Refused."""
    now = time.time() if now is None else now
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict):
        raise Refused("headers are not a mapping")
    body, pickled = _body(payload, accept_pickle)
    if "task" in headers:  # protocol 2
        if not (isinstance(body, (list, tuple)) and len(body) == 3):
            raise Refused("protocol 2 body is not [args, kwargs, embed]")
        args, kwargs, embed = body
        _canvas(embed)
        fields = headers
    elif isinstance(body, dict) and "task" in body:  # protocol 1: everything in the body
        args, kwargs, fields = body.get("args") or [], body.get("kwargs") or {}, body
        _canvas({"callbacks": body.get("callbacks"), "errbacks": body.get("errbacks"), "chord": body.get("chord")})
    else:
        raise Refused("not a Celery task message (no task name)")
    task_id, name = fields.get("id"), fields.get("task")
    if not isinstance(task_id, str) or not task_id or not isinstance(name, str) or not name:
        raise Refused("task id or name is missing")
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise Refused("args are not a list or kwargs not a mapping")
    eta, expires = _instant(fields.get("eta"), "eta"), _instant(fields.get("expires"), "expires")
    limits = fields.get("timelimit") or (None, None)
    hard, soft = [*limits, None, None][:2] if isinstance(limits, (list, tuple)) else (None, None)
    priority = (payload.get("properties") or {}).get("priority")
    envelope = Envelope(
        id=task_id, task=name, args=list(args), kwargs=dict(kwargs), queue=queue,
        # Celery on Redis ran lower numbers first; celeriac runs higher first, which is what the
        # code sending priority=9 meant (and what new messages from the same code will mean).
        priority=min(max(int(priority), 0), 9) if isinstance(priority, int) else default_priority,
        eta=eta if eta is not None and eta > now else None, expires=expires,
        retries=int(fields.get("retries") or 0),
        root_id=fields.get("root_id") or None, parent_id=fields.get("parent_id") or None,
        group_id=fields.get("group") or fields.get("taskset") or None,
        headers={k: v for k, v in headers.items() if k not in CELERY_HEADERS} if "task" in headers else {},
        ignore_result=bool(fields.get("ignore_result", False)),
        time_limit=float(hard) if hard is not None else None,
        soft_time_limit=float(soft) if soft is not None else None,
        origin=fields.get("origin") or None, sent=now,
    )
    delay = max(0.0, eta - now) if eta is not None else 0.0
    return Converted(envelope, delay, pickled, expires is not None and expires <= now)
