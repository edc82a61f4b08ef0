"""Remote control and inspection: ``app.control`` and ``app.control.inspect()``.

Commands travel through a capped log in the broker (``control``) that every worker's supervisor
reads; replies come back on a per-command log ``reply:<id>``. Revocations are also stored in the
broker map ``revoked`` (id -> when, until when), so a task revoked before any worker started, or
while every worker was restarting, is still skipped. A revoked task that is still delayed
(``countdown``/``eta``, or a retry waiting for its countdown) is removed from the broker and
recorded REVOKED at once, however far off it was due: a worker started next week cannot run it.
Other revocations are kept ``worker_revoke_expires`` seconds (at most ``worker_revokes_max``).

What lives in the broker rather than in a worker (delayed tasks, queue depths, dead letters) is
read from the broker directly, so it is right even when no worker is running.

With ``task_message_signing_key`` set, commands, replies and revocations are signed
(:mod:`celeriac.signing`) and whatever is unsigned or badly signed is refused where it is read:
writing to the broker is then not enough to steer workers. A command is valid for
``COMMAND_MAX_AGE`` seconds and runs once per worker.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from . import message, signing
from .brokers.base import DeadLetter, QueueStats
from .events import EVENT_LOG, app_cap, event
from .exceptions import BrokerError, SignatureError

if TYPE_CHECKING:
    from .app import Celery

CONTROL_LOG = "control"
REVOKED_MAP = "revoked"
# Stamped-header revocations: one field per (header, value), so two revokers never overwrite
# each other's values with a read-modify-write.
REVOKED_STAMPS_MAP = "revoked_stamps"
REVOKE_EXPIRES = 3 * 3600.0  # the default of worker_revoke_expires, as in Celery
PRUNE_EVERY = 100  # revoke() calls between two prunings of the revocation map
REPLY_TTL = 60.0
# Commands are read by live workers at once; a remote-control thread that fell behind (a broker
# outage) may read one later. Past this, a signed command is taken for a replay. Generous
# against clock skew between hosts, and the window in which a worker remembers command ids.
COMMAND_MAX_AGE = 300.0
COMMAND_PURPOSE = b"control"

logger = logging.getLogger("celeriac.control")

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _listify(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def seal(data: bytes, key: bytes | None, purpose: bytes) -> bytes:
    """``data`` signed for ``purpose`` when a signing key is configured, else as it is."""
    return signing.sign(data, key, purpose) if key is not None else data


def reply_purpose(command_id: str) -> bytes:
    # Bound to its command, so a signed reply cannot be passed off as another command's.
    return b"reply:" + command_id.encode()


def revocation_purpose(task_id: str) -> bytes:
    return b"revoke:" + task_id.encode()


def describe_body(body: bytes, app: Celery) -> dict[str, Any]:
    """A task message as inspect shows it (``id``, ``name``, ``args``...), or why it is unreadable."""
    try:
        env = message.decode(body, accept=frozenset(app.conf.accept_content), signing_key=app.signing_key)
    except Exception as exc:
        return {"id": message.peek_id(body), "name": None, "error": str(exc)}
    args, kwargs = app.redactor.arguments(env.args, env.kwargs, app.tasks.get(env.task))
    return {"id": env.id, "name": env.task, "args": args, "kwargs": kwargs, "retries": env.retries,
            "eta": env.eta, "expires": env.expires, "priority": env.priority, "queue": env.queue}


def revocation_until(key: bytes | None, task_id: str, data: bytes, expires: float) -> float | None:
    """Until when ``task_id`` stays revoked, from its record in the ``revoked`` map (records
    without ``until`` were written by older versions: they last ``expires`` from when they were
    made); None when the record is unreadable or, with a signing key, not signed for this id."""
    try:
        _, body = signing.verify(data, key, revocation_purpose(task_id), what="revocation")
        entry = message.loads(body)
        return float(entry.get("until") or float(entry.get("time", 0)) + expires)
    except Exception:
        return None


def stamp_field(header: str, value: Any) -> str:
    """The ``revoked_stamps`` field of one revoked (header, value) pair."""
    return _encode([header, value]).decode()


def stamp_revocation_purpose(field: str) -> bytes:
    return b"revoke-stamp:" + field.encode()


def stamp_headers_of(headers: Any) -> dict[str, list[Any]]:
    """``revoke_by_stamped_headers``' argument as header -> values: a dict (a value or a list of
    values each) or, as Celery's command line gives it, a list of ``"header=value"`` strings."""
    if isinstance(headers, (list, tuple)):
        pairs: dict[str, list[Any]] = {}
        for item in headers:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"revoke_by_stamped_headers: {item!r} is not 'header=value'")
            name, _, value = item.partition("=")
            pairs.setdefault(name, []).append(value)
        return pairs
    if not isinstance(headers, dict) or not headers:
        raise ValueError(f"revoke_by_stamped_headers: headers must be a non-empty dict, not {headers!r}")
    out: dict[str, list[Any]] = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            raise ValueError(f"revoke_by_stamped_headers: header name {name!r} is not a string")
        out[name] = list(value) if isinstance(value, (list, tuple, set)) else [value]
    return out


def live_stamp_revocations(entries: dict[str, bytes], now: float, key: bytes | None = None) -> dict[str, list[Any]]:
    """Revoked stamps still in force at ``now``: header -> revoked values. Records unreadable or
    not signed with ``key`` (when one is set) revoke nothing."""
    live: dict[str, list[Any]] = {}
    for field, data in entries.items():
        try:
            _, body = signing.verify(data, key, stamp_revocation_purpose(field), what="revocation")
            until = float(message.loads(body)["until"])
            header, value = _decode(field)
        except Exception:
            continue
        if until >= now:
            live.setdefault(str(header), []).append(value)
    return live


def stamps_revoked(stamps: dict[str, Any], revoked: dict[str, list[Any]]) -> dict[str, Any] | None:
    """The first ``{header: value}`` of a task's ``stamps`` that is revoked, or None. A stamp
    holding a list is revoked when any of its values is."""
    for header, value in stamps.items():
        values = revoked.get(header)
        if values is None:
            continue
        for one in value if isinstance(value, list) else (value,):
            if one in values:
                return {header: one}
    return None


def live_revocations(entries: dict[str, bytes], now: float, expires: float,
                     key: bytes | None = None) -> dict[str, float]:
    """Revoked ids still in force at ``now``, with until when. Records that are unreadable or
    not signed with ``key`` (when one is set) are no revocation at all."""
    live: dict[str, float] = {}
    for task_id, data in entries.items():
        until = revocation_until(key, task_id, data, expires)
        if until is not None and until >= now:
            live[task_id] = until
    return live


class Control:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self._revokes = 0

    @property
    def broker(self) -> Any:
        return self.app.broker

    # -- the mailbox ----------------------------------------------------------------------------
    def broadcast(self, command: str, arguments: dict[str, Any] | None = None,
                  destination: str | Sequence[str] | None = None, reply: bool = False, timeout: float = 1.0,
                  limit: int | None = None) -> list[dict[str, Any]] | None:
        """Send ``command`` to every worker (or those named in ``destination``). With ``reply``,
        wait up to ``timeout`` seconds and return ``[{hostname: reply}, ...]``."""
        destination = _listify(destination)
        command_id = uuid.uuid4().hex
        data = _encode({"id": command_id, "command": command, "arguments": arguments or {},
                        "destination": destination, "reply": reply, "sent": time.time()})
        self.broker.log_append(CONTROL_LOG, seal(data, self.app.signing_key, COMMAND_PURPOSE), 1000)
        if not reply:
            return None
        expected = limit or self._expected(destination)
        if expected == 0:
            return []  # the registry knows no live worker that could answer: waiting cannot help
        return self._collect(command_id, expected, timeout)

    def _expected(self, destination: list[str] | None) -> int:
        alive = [w.name for w in self.broker.workers() if w.alive]
        if destination is None:
            return len(alive)
        return len([d for d in destination if d in alive])

    def _collect(self, command_id: str, expected: int, timeout: float) -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        after: str | None = None
        deadline = time.monotonic() + timeout
        name = f"reply:{command_id}"
        key, purpose = self.app.signing_key, reply_purpose(command_id)
        while len(replies) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for entry_id, data in self.broker.log_read(name, after, 100, timeout=min(remaining, 0.5)):
                after = entry_id
                try:
                    replies.append(_decode(signing.verify(data, key, purpose, what="control reply")[1]))
                except SignatureError as exc:
                    logger.error("remote control: ignoring a reply: %s", exc)
        return replies

    # -- commands -------------------------------------------------------------------------------
    def inspect(self, destination: str | Sequence[str] | None = None, timeout: float = 1.0) -> Inspect:
        return Inspect(self, _listify(destination), timeout)

    def ping(self, destination: str | Sequence[str] | None = None, timeout: float = 1.0) -> list[dict[str, Any]]:
        return self.broadcast("ping", destination=destination, reply=True, timeout=timeout) or []

    def revoke(self, task_id: str | Iterable[str], destination: str | Sequence[str] | None = None,
               terminate: bool = False, signal: str | int = "SIGTERM", reply: bool = False,
               timeout: float = 1.0, **_: Any) -> list[dict[str, Any]] | None:
        """Skip these tasks if they have not started (cluster-wide, surviving worker restarts for
        ``worker_revoke_expires``); a delayed one is removed from the broker and recorded REVOKED;
        with ``terminate``, also stop them where they run, with ``signal``."""
        ids = _listify(task_id) or []
        now = time.time()
        until = now + float(self.app.conf.worker_revoke_expires)
        key = self.app.signing_key
        queues: list[str] | None = None
        for one in ids:
            # The revocation first: a message promoted while we look for it is still skipped.
            record = _encode({"time": now, "until": until, "terminate": terminate})
            self.broker.map_set(REVOKED_MAP, one, seal(record, key, revocation_purpose(one)))
            if queues is None:
                queues = sorted(set(self.broker.queues()) | set(self.app.queues()))
            if any(self.broker.remove_scheduled(queue, one) for queue in queues):
                self._record_revoked(one)
        if self._revokes % PRUNE_EVERY == 0:
            self._prune(now)
        self._revokes += 1
        return self.broadcast("revoke", {"task_ids": ids, "terminate": terminate, "signal": str(signal)},
                              destination=destination, reply=reply, timeout=timeout)

    def revoke_by_stamped_headers(self, headers: dict[str, Any] | Sequence[str],
                                  destination: str | Sequence[str] | None = None, terminate: bool = False,
                                  signal: str | int = "SIGTERM", reply: bool = False, timeout: float = 1.0,
                                  **_: Any) -> list[dict[str, Any]] | None:
        """Skip every task whose stamps (``Signature.stamp``) match ``headers``
        (``{"batch": "b1"}``, or a list of values: any of them) if it has not started,
        cluster-wide and surviving worker restarts for ``worker_revoke_expires``; with
        ``terminate``, also stop matching tasks where they run, with ``signal``."""
        wanted = stamp_headers_of(headers)
        now = time.time()
        record = _encode({"time": now, "until": now + float(self.app.conf.worker_revoke_expires),
                          "terminate": terminate})
        key = self.app.signing_key
        for header, values in wanted.items():
            for value in values:
                field = stamp_field(header, value)
                self.broker.map_set(REVOKED_STAMPS_MAP, field, seal(record, key, stamp_revocation_purpose(field)))
        self._prune_stamps(now)
        return self.broadcast("revoke_by_stamped_headers",
                              {"headers": wanted, "terminate": terminate, "signal": str(signal)},
                              destination=destination, reply=reply, timeout=timeout)

    def _prune_stamps(self, now: float) -> None:
        """Drop stamp revocations past their time (they are few: pruned on every call)."""
        key = self.app.signing_key
        for field, data in self.broker.map_get(REVOKED_STAMPS_MAP).items():
            if not live_stamp_revocations({field: data}, now, key):
                self.broker.map_delete(REVOKED_STAMPS_MAP, field)

    def revoked_stamps(self) -> dict[str, list[Any]]:
        """Stamped headers revoked and still remembered: header -> values."""
        return live_stamp_revocations(self.broker.map_get(REVOKED_STAMPS_MAP), time.time(), self.app.signing_key)

    def terminate(self, task_id: str | Iterable[str], signal: str | int = "SIGTERM", **kwargs: Any) -> Any:
        return self.revoke(task_id, terminate=True, signal=signal, **kwargs)

    def _record_revoked(self, task_id: str) -> None:
        """The delayed message is gone: callers waiting on its result learn why now."""
        meta = {"task_id": task_id, "status": "REVOKED", "result": "revoked", "exc_type": "TaskRevoked",
                "exc_module": "celeriac.exceptions", "exc_message": ["revoked"]}
        self.app.backend.write([(task_id, message.dumps(meta), True)])
        # No worker will ever see this message, so no worker will say it was revoked: without this
        # event, readers of the event log (the dashboard's history) would show it pending for good.
        try:
            data = event("task-revoked", uuid=task_id, reason="revoked before it was due")
            self.broker.log_append(EVENT_LOG, data, app_cap(self.app)(data))
        except BrokerError as exc:  # the store says REVOKED already; readers fall back to it
            logger.debug("could not write task-revoked for %s: %s", task_id, exc)

    def _prune(self, now: float) -> dict[str, float]:
        """Drop revocations past their time, and the oldest beyond ``worker_revokes_max``."""
        entries = self.broker.map_get(REVOKED_MAP)
        live = live_revocations(entries, now, float(self.app.conf.worker_revoke_expires),
                                self.app.signing_key)
        cap = max(1, int(self.app.conf.worker_revokes_max))
        if len(live) > cap:
            for task_id in sorted(live, key=live.__getitem__)[: len(live) - cap]:
                del live[task_id]
        for task_id in entries:
            if task_id not in live:
                self.broker.map_delete(REVOKED_MAP, task_id)
        return live

    def revoked(self) -> dict[str, float]:
        """Revoked task ids still remembered, with until when (old ones pruned)."""
        return self._prune(time.time())

    def rate_limit(self, task_name: str, rate_limit: str | int | float | None,
                   destination: str | Sequence[str] | None = None, reply: bool = False,
                   timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("rate_limit", {"task_name": task_name, "rate_limit": rate_limit},
                              destination=destination, reply=reply, timeout=timeout)

    def time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None,
                   destination: str | Sequence[str] | None = None, reply: bool = False,
                   timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("time_limit", {"task_name": task_name, "soft": soft, "hard": hard},
                              destination=destination, reply=reply, timeout=timeout)

    def add_consumer(self, queue: str, destination: str | Sequence[str] | None = None, reply: bool = False,
                     timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("add_consumer", {"queue": queue}, destination=destination, reply=reply,
                              timeout=timeout)

    def cancel_consumer(self, queue: str, destination: str | Sequence[str] | None = None, reply: bool = False,
                        timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("cancel_consumer", {"queue": queue}, destination=destination, reply=reply,
                              timeout=timeout)

    def pool_grow(self, n: int = 1, destination: str | Sequence[str] | None = None, reply: bool = False,
                  timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("pool_grow", {"n": n}, destination=destination, reply=reply, timeout=timeout)

    def pool_shrink(self, n: int = 1, destination: str | Sequence[str] | None = None, reply: bool = False,
                    timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("pool_shrink", {"n": n}, destination=destination, reply=reply, timeout=timeout)

    def enable_events(self, destination: str | Sequence[str] | None = None, reply: bool = False,
                      timeout: float = 1.0, **_: Any) -> Any:
        """Turn task events back on in the workers (``disable_events`` turned them off)."""
        return self.broadcast("enable_events", destination=destination, reply=reply, timeout=timeout)

    def disable_events(self, destination: str | Sequence[str] | None = None, reply: bool = False,
                       timeout: float = 1.0, **_: Any) -> Any:
        """Stop the workers sending task events until ``enable_events`` (or a restart)."""
        return self.broadcast("disable_events", destination=destination, reply=reply, timeout=timeout)

    def autoscale(self, max: int, min: int, destination: str | Sequence[str] | None = None,
                  reply: bool = False, timeout: float = 1.0, **_: Any) -> Any:
        """New --autoscale bounds for workers started with it."""
        return self.broadcast("autoscale", {"max": max, "min": min}, destination=destination, reply=reply,
                              timeout=timeout)

    def shutdown(self, destination: str | Sequence[str] | None = None, reply: bool = False,
                 timeout: float = 1.0, **_: Any) -> Any:
        return self.broadcast("shutdown", destination=destination, reply=reply, timeout=timeout)

    # -- what the broker holds ----------------------------------------------------------------
    def purge(self, queues: Sequence[str] | None = None) -> int:
        return int(self.broker.purge(list(queues or self.app.queues())))

    def workers(self) -> list[dict[str, Any]]:
        """The registry: every recently seen worker with its last heartbeat info and ``alive``.
        A name with a live incarnation is not listed again for its dead predecessors (a restart
        is one worker to the people watching); a name with none shows its latest."""
        records = self.broker.workers()
        alive_names = {r.name for r in records if r.alive}
        latest: dict[str, float] = {}
        for record in records:
            if not record.alive:
                latest[record.name] = max(latest.get(record.name, 0.0), record.last_seen)
        out = []
        for record in records:
            if not record.alive and (record.name in alive_names or record.last_seen < latest[record.name]):
                continue
            info = _decode(record.info) if record.info else {}
            out.append({**info, "hostname": record.name, "alive": record.alive, "last_seen": record.last_seen})
        return out

    def queues(self, names: Sequence[str] | None = None) -> list[QueueStats]:
        return list(self.broker.stats(list(names or sorted(set(self.broker.queues()) | set(self.app.queues())))))

    def scheduled(self, queues: Sequence[str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        names = list(queues or sorted(set(self.broker.queues()) | set(self.app.queues())))
        return [{"eta": s.due, "priority": s.priority, "queue": s.queue,
                 "request": describe_body(s.body, self.app)} for s in self.broker.scheduled(names, limit)]

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        return list(self.broker.dead_letters(queue, limit))

    def retry_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return int(self.broker.retry_dead(queue, ids))

    def drop_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return int(self.broker.drop_dead(queue, ids))


class Inspect:
    """``app.control.inspect()``: each method returns ``{hostname: reply}`` or None if nobody replied."""

    def __init__(self, control: Control, destination: list[str] | None, timeout: float) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout

    def _ask(self, command: str, **arguments: Any) -> dict[str, Any] | None:
        replies = self.control.broadcast(command, arguments, destination=self.destination, reply=True,
                                         timeout=self.timeout)
        merged: dict[str, Any] = {}
        for one in replies or []:
            merged.update(one)
        return merged or None

    def ping(self) -> dict[str, Any] | None:
        return self._ask("ping")

    def active(self) -> dict[str, Any] | None:
        return self._ask("active")

    def reserved(self) -> dict[str, Any] | None:
        return self._ask("reserved")

    def registered(self) -> dict[str, Any] | None:
        return self._ask("registered")

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        return self._ask("stats")

    def active_queues(self) -> dict[str, Any] | None:
        return self._ask("active_queues")

    def conf(self, with_defaults: bool = False) -> dict[str, Any] | None:
        return self._ask("conf")

    def revoked(self) -> dict[str, Any] | None:
        return self._ask("revoked")

    def query_task(self, *ids: str) -> dict[str, Any] | None:
        return self._ask("query_task", ids=list(ids))

    def report(self) -> dict[str, Any] | None:
        """``{hostname: {"ok": text}}``: versions, platform and settings (secrets hidden) for a bug report."""
        return self._ask("report")

    def scheduled(self) -> dict[str, Any] | None:
        """Delayed tasks wait in the broker, not in a worker: they are listed under ``"broker"``."""
        return {"broker": self.control.scheduled()}
