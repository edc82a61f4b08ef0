"""Moving Celery's waiting tasks into celeriac so that an interruption loses and duplicates
nothing.

Celery's broker and celeriac's share no transaction, so each message moves in three steps,
one message at a time, with a journal in Celery's Redis (``celeriac-migrate:*``):

1. **copy, held**: the task id goes into the journal's ``copying`` hash, then the converted
   message is stored in celeriac as a delayed message keyed by the task id and due in ten
   years: no worker can run it yet.
2. **commit**: one Lua script (``commit.lua``) removes the message from Celery (``LREM`` from
   its list, or ``HDEL`` from ``unacked``) and, only if it was still there, moves the id from
   ``copying`` to ``releasing`` (with its due time) and to the ``done`` set.
3. **release**: ``Broker.reschedule`` makes the held copy due at the task's own time (now, or
   its eta) in one atomic step, then the id leaves ``releasing``.

A re-run first finishes what a crash left: ids in ``releasing`` are released again
(``reschedule`` of an already released message changes nothing, and of a promoted one is a
no-op), and ids in ``copying`` were never committed, so their held copies (if made) are
dropped and the messages, still in Celery, move afresh. Ids in ``done`` are never copied
again: if a Celery worker restores one of them to its list, it is only removed. A lock
(``celeriac-migrate:lock``) keeps two runs apart.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis

from .. import message
from ..exceptions import CeleriacError, EncodeError
from ..publish import check_size
from .convert import Converted, Refused, convert, message_id
from .source import UNACKED, UNACKED_INDEX, CelerySource, Found, payload_of

if TYPE_CHECKING:
    from ..app import Celery
    from ..brokers.base import Broker

PREFIX = "celeriac-migrate:"
COPYING, RELEASING, DONE, LOCK = (PREFIX + k for k in ("copying", "releasing", "done", "lock"))
HOLD = 10 * 365 * 86400.0  # a held copy's delay: far beyond any real eta
DONE_TTL = 30 * 86400  # how long moved ids are remembered (a Celery restore after that would copy again)
LOCK_TTL = 30


class MigrationError(CeleriacError):
    """The cut-over cannot start (another run holds the lock, ...)."""


@dataclass
class QueueReport:
    """What one queue held (dry run) or what moved (a run)."""

    queue: str
    ready: int = 0
    unacked: int = 0
    delayed: int = 0  # with an eta still ahead
    expired: int = 0
    moved: int = 0
    already_moved: int = 0  # ids moved before (a Celery worker restored them): only removed
    taken: int = 0  # gone from Celery between copy and commit (a Celery worker still runs)
    by_priority: Counter[int] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)


def _release_note(converted: Converted) -> str:
    env = converted.envelope
    return json.dumps({"queue": env.queue, "due": env.eta or 0.0})


class Mover:
    """One cut-over from ``source`` into ``app``'s broker."""

    def __init__(self, source: CelerySource, app: Celery, *, accept_pickle: bool = False) -> None:
        self.source, self.app, self.accept_pickle = source, app, accept_pickle
        self.broker: Broker = app.broker
        self._commit = source.client.register_script(
            resources.files(__package__).joinpath("commit.lua").read_text())
        self._token = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._locked_at = 0.0
        #: Called after each step with its name; tests use it to stop a run between steps.
        self.after_step: Callable[[str], None] = lambda step: None

    # -- the plan ------------------------------------------------------------------------------
    def _convert(self, found: Found) -> Converted:
        return convert(found.payload, found.queue, accept_pickle=self.accept_pickle,
                       default_priority=int(self.app.conf.task_default_priority or 0))

    def _wanted(self, queues: list[str] | None) -> list[str]:
        return queues or self.source.queues()

    def plan(self, queues: list[str] | None = None) -> list[QueueReport]:
        """What a run would move, per queue; changes nothing. Reads one message at a time."""
        names = self._wanted(queues)
        reports = {name: QueueReport(name) for name in names}
        done = {_text(m) for m in self.source.client.smembers(DONE)}
        for found in self.source.unacked():
            if found.queue in reports:
                reports[found.queue].unacked += 1
                self._tally(reports[found.queue], found, done)
        for name in names:
            for found in self.source.ready(name):
                reports[name].ready += 1
                self._tally(reports[name], found, done)
        return list(reports.values())

    def _tally(self, report: QueueReport, found: Found, done: set[str]) -> None:
        try:
            converted = self._convert(found)
        except Refused as why:
            report.refused[str(why)] += 1
            return
        if converted.envelope.id in done:
            report.already_moved += 1
            return
        report.moved += 1
        report.by_priority[converted.envelope.priority] += 1
        report.delayed += converted.delay > 0
        report.expired += converted.expired

    # -- the run -------------------------------------------------------------------------------
    def run(self, queues: list[str] | None = None,
            done: Callable[[QueueReport], None] = lambda report: None) -> list[QueueReport]:
        """Move every message of ``queues`` (default: every queue Celery declared); ``done``
        is called with each queue's report as soon as the queue is finished."""
        self._lock()
        try:
            self.recover()
            names = self._wanted(queues)
            reports = {name: QueueReport(name) for name in names}
            for found in list(self.source.unacked()):
                if found.queue in reports:
                    reports[found.queue].unacked += 1
                    self._move(reports[found.queue], found)
            for name in names:
                for key in self.source.lists(name):
                    self._drain_list(reports[name], name, key)
                self.broker.promote([name])
                done(reports[name])
            return list(reports.values())
        finally:
            self._unlock()

    def _drain_list(self, report: QueueReport, queue: str, key: str) -> None:
        skip = 0  # refused messages stay at the tail, in their order
        while True:
            raw = self.source.tail(key, skip)
            if raw is None:
                return
            report.ready += 1
            if not self._move(report, Found(queue, payload_of(raw), key, raw)):
                skip += 1

    def _move(self, report: QueueReport, found: Found) -> bool:
        """Move one message; False if it stays in Celery (refused)."""
        self._keep_lock()
        client = self.source.client
        try:
            converted = self._convert(found)
        except Refused as why:
            report.refused[str(why)] += 1
            return False
        env = converted.envelope
        if client.sismember(DONE, env.id):
            self._commit_one(found, env.id, "")
            report.already_moved += 1
            return True
        try:
            body = self._encode(converted)
        except EncodeError as exc:
            report.refused[str(exc)] += 1
            return False
        client.hset(COPYING, env.id, env.queue)
        self.broker.enqueue(env.queue, body, priority=env.priority, delay=HOLD, key=env.id)
        self.after_step("copied")
        if not self._commit_one(found, env.id, _release_note(converted)):
            self.broker.remove_scheduled(env.queue, env.id)
            client.hdel(COPYING, env.id)
            report.taken += 1
            return True
        self.after_step("committed")
        self._release(env.id, env.queue, env.eta or 0.0)
        report.moved += 1
        report.by_priority[env.priority] += 1
        report.delayed += converted.delay > 0
        report.expired += converted.expired
        return True

    def _encode(self, converted: Converted) -> bytes:
        envelope, key = converted.envelope, self.app.signing_key
        try:
            body = message.encode(envelope, serializer="json", signing_key=key)
        except EncodeError:
            if not converted.pickled:
                raise
            # Pickled in Celery and not JSON-able: stays pickled; workers need accept_content pickle.
            body = message.encode(envelope, serializer="pickle", signing_key=key)
        # Workers dead-letter a message over task_message_max_bytes unread: better left in Celery.
        check_size(self.app, envelope.task, body)
        return body

    def _commit_one(self, found: Found, task_id: str, note: str) -> bool:
        mode = "unacked" if found.key == UNACKED else "list"
        keys = [found.key, UNACKED_INDEX, RELEASING, COPYING, DONE]
        return bool(self._commit(keys=keys, args=[mode, found.member, task_id, note, DONE_TTL]))

    def _release(self, task_id: str, queue: str, due: float) -> None:
        self.broker.reschedule(queue, task_id, max(0.0, due - time.time()))
        self.source.client.hdel(RELEASING, task_id)

    def recover(self) -> int:
        """Finish what an interrupted run left; returns how many entries it settled."""
        client = self.source.client
        settled = 0
        for raw_id, raw_note in client.hgetall(RELEASING).items():
            note = json.loads(raw_note)
            self._release(_text(raw_id), note["queue"], float(note["due"]))
            settled += 1
        for raw_id, raw_queue in client.hgetall(COPYING).items():
            # Never committed: the message is still in Celery (or a Celery worker took it), so
            # the held copy, if it was made, must go; the message moves afresh.
            self.broker.remove_scheduled(_text(raw_queue), _text(raw_id))
            client.hdel(COPYING, raw_id)
            settled += 1
        return settled

    # -- the lock ----------------------------------------------------------------------------
    def _lock(self) -> None:
        client = self.source.client
        if not client.set(LOCK, self._token, nx=True, ex=LOCK_TTL) and not self._take_over(client):
            raise MigrationError(f"another migrate-from-celery run holds {LOCK} on {self.source.url}; "
                                 f"wait for it (the lock expires {LOCK_TTL} s after a crash)")
        self._locked_at = time.monotonic()

    def _take_over(self, client: Any) -> bool:
        """Take the lock of a run on this host whose process is gone (killed), instead of
        making the re-run wait for the lock to expire."""
        holder = _text(client.get(LOCK) or b"")
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
            return False
        except ProcessLookupError:
            pass
        except PermissionError:  # alive, someone else's
            return False
        with client.pipeline() as pipe:
            try:
                pipe.watch(LOCK)
                if _text(pipe.get(LOCK) or b"") != holder:
                    return False
                pipe.multi()
                pipe.set(LOCK, self._token, ex=LOCK_TTL)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def _keep_lock(self) -> None:
        if time.monotonic() - self._locked_at > LOCK_TTL / 3:
            if _text(self.source.client.get(LOCK) or b"") != self._token:
                raise MigrationError(f"lost {LOCK} (the run stalled for over {LOCK_TTL} s); run again")
            self.source.client.expire(LOCK, LOCK_TTL)
            self._locked_at = time.monotonic()

    def _unlock(self) -> None:
        if _text(self.source.client.get(LOCK) or b"") == self._token:
            self.source.client.delete(LOCK)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = ["Mover", "MigrationError", "QueueReport", "message_id"]
