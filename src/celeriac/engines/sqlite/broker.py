"""The embedded default broker: one SQLite file in WAL mode, shared by producer and worker
processes on one machine.

URLs: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (see
:func:`~celeriac.engines.sqlite.db.sqlite_path`). Durability: ``synchronous=NORMAL`` by default
(a committed message survives any process crash; a power loss may drop the last transactions),
``synchronous=FULL`` with ``durable=True`` (setting ``broker_sqlite_durable``).

Every state change is one ``BEGIN IMMEDIATE`` transaction (see ``db.py``), so a message is
never leased twice and a recovery or promotion happens exactly once however many processes try.
Reads that usually find nothing (an empty queue, no expired lease, nothing due) look first in a
read transaction and only take the write lock when there is work.

Clock: ``time.time()`` of the calling process, the one clock of the one machine sharing the file.

Blocking ``fetch`` and ``log_read``: a Unix datagram doorbell rung after each commit that makes a
message ready or appends to a log (about 1 ms from ``enqueue`` in one process to ``fetch``
returning in another); where the doorbell cannot be used, a ``PRAGMA data_version`` poll with
backoff capped at 50 ms. Details and measurements in ``wake.py``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ...brokers.base import (
    BEAT_FORGOTTEN,
    BEAT_LAPSED,
    BEAT_OK,
    Broker,
    Delivery,
    Scheduled,
    clamp_priority,
    worker_of,
)
from .admin import SQLiteAdmin
from .coord import LOGS, SQLiteCoordination, append_in
from .db import Database, placeholders, sqlite_path
from .schema import ROW, SCHEMA
from .wake import Doorbell, block_until

READY = ("q",)  # doorbell channel of fetchers

# A leased row whose own lease and whose worker's heartbeat both ran out.
_EXPIRED = ("FROM messages AS m WHERE m.consumer IS NOT NULL AND m.lease_until < ? AND NOT EXISTS "
            "(SELECT 1 FROM incarnations AS w WHERE w.name = m.worker AND w.expires >= ?)")
_PULSE = "celeriac:pulse"  # kv key: when any worker last heartbeated
_UNLEASE = "UPDATE messages SET consumer = NULL, worker = NULL, lease_until = NULL"
_IS_HELD = "id = ? AND handouts = ? AND consumer IS NOT NULL"

def _parse_tag(tag: str) -> tuple[int, int] | None:
    msg_id, _, handouts = tag.partition(":")
    return (int(msg_id), int(handouts)) if msg_id.isdigit() and handouts.isdigit() else None


def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[str, int, bytes, str, float]]) -> bool:
    """Queue ``(queue, priority, body, key, delay)`` rows in the caller's transaction; True if
    any is ready now (the caller rings the fetchers' doorbell after its commit)."""
    now = time.time()
    conn.executemany("INSERT OR IGNORE INTO queues (name) VALUES (?)", {(r[0],) for r in rows})
    ready = [r[:4] for r in rows if r[4] <= 0]
    conn.executemany("INSERT INTO messages (queue, priority, body, key) VALUES (?, ?, ?, ?)", ready)
    conn.executemany("INSERT INTO delayed (queue, priority, body, key, due) VALUES (?, ?, ?, ?, ?)",
                     [(*r[:4], now + r[4]) for r in rows if r[4] > 0])
    return bool(ready)


def _keys(deliveries: Sequence[Delivery]) -> list[tuple[int, int]]:
    return [key for key in map(_parse_tag, (d.tag for d in deliveries)) if key is not None]


class SQLiteBroker(SQLiteCoordination, SQLiteAdmin, Broker):
    """A broker in one SQLite file (see the module docstring)."""

    schemes = ("sqlite",)

    def __init__(self, url: str, *, max_redeliveries: int = 3, lease_seconds: float = 6.0,
                 durable: bool = False) -> None:
        super().__init__(url, max_redeliveries=max_redeliveries, lease_seconds=lease_seconds)
        self.path = sqlite_path(url)
        self.durable = durable
        self._db = Database(self.path, SCHEMA, durable=durable, what="SQLite broker")
        self._bell = Doorbell(self.path)

    # -- producing ------------------------------------------------------------------------
    def enqueue(self, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
                key: str = "") -> None:
        self.enqueue_many([(queue, body, priority, delay, key)])

    def enqueue_many(self, items: Iterable[tuple[str, bytes, int, float, str]]) -> None:
        rows = [(queue, clamp_priority(priority), body, key, delay)
                for queue, body, priority, delay, key in items]
        if not rows:
            return
        if self._db.write(lambda conn: _insert(conn, rows)):
            self._bell.ring(READY)

    # -- consuming ------------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], consumer: str, count: int, timeout: float) -> list[Delivery]:
        if not queues or count <= 0:
            return []
        marks = placeholders(queues)

        def any_ready(conn: sqlite3.Connection) -> bool:
            sql = f"SELECT 1 FROM messages WHERE consumer IS NULL AND queue IN ({marks}) LIMIT 1"
            return conn.execute(sql, tuple(queues)).fetchone() is not None

        def attempt() -> list[Delivery]:
            if not self._db.read(any_ready):
                return []
            return self._db.write(lambda conn: self._take(conn, queues, consumer, count))

        return block_until(attempt, db=self._db, bell=self._bell, channel=READY[0], timeout=timeout)

    def _take(self, conn: sqlite3.Connection, queues: Sequence[str], consumer: str,
              count: int) -> list[Delivery]:
        worker, lease_until = worker_of(consumer), time.time() + self.lease_seconds
        out: list[Delivery] = []
        for queue in queues:
            if len(out) >= count:
                break
            rows = conn.execute(
                "UPDATE messages SET consumer = ?, worker = ?, lease_until = ?, handouts = handouts + 1 "
                "WHERE id IN (SELECT id FROM messages WHERE queue = ? AND consumer IS NULL "
                "ORDER BY priority DESC, id LIMIT ?) RETURNING id, priority, body, redeliveries, handouts",
                (consumer, worker, lease_until, queue, count - len(out))).fetchall()
            rows.sort(key=lambda row: (-row[1], row[0]))  # RETURNING comes in no promised order
            out += [Delivery(queue, prio, body, f"{msg_id}:{handouts}", redeliveries)
                    for msg_id, prio, body, redeliveries, handouts in rows]
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if keys := _keys(deliveries):
            self._db.write(lambda conn: conn.executemany(f"DELETE FROM messages WHERE {_IS_HELD}", keys))

    def requeue(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        keys = _keys(deliveries)

        def give_back(conn: sqlite3.Connection) -> None:
            if delay <= 0:
                # It keeps its id, so it goes back where it was in line.
                conn.executemany(f"{_UNLEASE} WHERE {_IS_HELD}", keys)
                return
            due = time.time() + delay
            conn.executemany(
                "INSERT INTO delayed (queue, priority, body, key, redeliveries, due) SELECT queue, "
                f"priority, body, key, redeliveries, ? FROM messages WHERE {_IS_HELD}",
                [(due, *key) for key in keys])
            conn.executemany(f"DELETE FROM messages WHERE {_IS_HELD}", keys)

        if keys:
            self._db.write(give_back)
            if delay <= 0:
                self._bell.ring(READY)

    def dead_letter(self, deliveries: Sequence[Delivery], reason: str, *, backend: Any = None,
                    records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        keys = _keys(deliveries)
        shared = bool(records) and self._shares_file(backend)
        if records and not shared:
            backend.write(records)

        def bury(conn: sqlite3.Connection) -> None:
            if shared:
                backend.store_in(conn, records)
            now = time.time()
            conn.executemany(
                "INSERT INTO dead_letters (queue, priority, body, key, reason, time) SELECT queue, "
                f"priority, body, key, ?, ? FROM messages WHERE {_IS_HELD}",
                [(reason, now, *key) for key in keys])
            conn.executemany(f"DELETE FROM messages WHERE {_IS_HELD}", keys)

        if keys or shared:
            self._db.write(bury)
        if shared:
            backend.ring(records)

    def resend(self, delivery: Delivery | None, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
               key: str = "", backend: Any = None, records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        shared = bool(records) and self._shares_file(backend)
        if records and not shared:
            backend.write(records)
        held = None if delivery is None else _parse_tag(delivery.tag)

        def swap(conn: sqlite3.Connection) -> None:
            if shared:
                backend.store_in(conn, records)
            _insert(conn, [(queue, clamp_priority(priority), body, key, delay)])
            if held is not None:
                conn.execute(f"DELETE FROM messages WHERE {_IS_HELD}", held)

        self._db.write(swap)
        if shared:
            backend.ring(records)
        if delay <= 0:
            self._bell.ring(READY)

    # -- leases and recovery --------------------------------------------------------------
    def heartbeat(self, worker: str, info: bytes, queues: Sequence[str], *,
                  running: Sequence[Delivery] = (), first: bool = False) -> str:
        def beat(conn: sqlite3.Connection) -> str:
            now = time.time()
            pulse = conn.execute("SELECT value FROM kv WHERE key = ?", (_PULSE,)).fetchone()
            if pulse is not None and now - float(pulse[0]) > self.stall_seconds:  # see Broker: stalls
                conn.execute("UPDATE incarnations SET expires = ? WHERE expires < ? AND NOT recovered",
                             (now + self.lease_seconds, now + self.lease_seconds))
            conn.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, NULL)",
                         (_PULSE, repr(now).encode()))
            previous = conn.execute("SELECT expires, recovered FROM incarnations WHERE name = ?",
                                    (worker,)).fetchone()
            conn.execute(
                "INSERT INTO incarnations (name, info, last_seen, expires, queues, running, recovered) "
                "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (name) DO UPDATE SET info = excluded.info, "
                "last_seen = excluded.last_seen, expires = excluded.expires, queues = excluded.queues, "
                "running = excluded.running, recovered = 0",
                (worker, info, now, now + self.lease_seconds, "\n".join(queues), "\n".join(d.tag for d in running)))
            conn.execute("DELETE FROM incarnations WHERE last_seen < ?", (now - self.worker_retention,))
            if previous is None:
                return BEAT_OK if first else BEAT_FORGOTTEN
            return BEAT_LAPSED if previous[1] or previous[0] < now else BEAT_OK

        return self._db.write(beat)

    def deregister(self, worker: str) -> None:
        self._db.write(lambda conn: conn.execute("DELETE FROM incarnations WHERE name = ?", (worker,)))

    def recover(self, worker: str | None = None) -> list[Delivery]:
        now = time.time()

        def may_judge(conn: sqlite3.Connection) -> bool:
            if worker is not None:
                mine = conn.execute("SELECT expires, recovered FROM incarnations WHERE name = ?", (worker,)).fetchone()
                if mine is None or mine[0] < now or mine[1]:
                    return False
            pulse = conn.execute("SELECT value FROM kv WHERE key = ?", (_PULSE,)).fetchone()
            if pulse is not None and now - float(pulse[0]) > self.stall_seconds:
                return False
            return conn.execute(f"SELECT 1 {_EXPIRED} LIMIT 1", (now, now)).fetchone() is not None

        if not self._db.read(may_judge):
            return []

        def take_back(conn: sqlite3.Connection) -> tuple[list[Delivery], int]:
            now = time.time()
            rows = conn.execute(f"SELECT {ROW}, m.worker {_EXPIRED}", (now, now)).fetchall()
            lapsed = sorted({row[-1] for row in rows})
            conn.executemany("UPDATE incarnations SET recovered = 1 WHERE name = ? AND expires < ?",
                             [(name, now) for name in lapsed])
            return self._charge_started(conn, rows, now)

        dead, back = self._db.write(take_back)
        if back:
            self._bell.ring(READY)
        return dead

    def evict(self, worker: str) -> list[Delivery]:
        def take_back(conn: sqlite3.Connection) -> tuple[list[Delivery], int]:
            now = time.time()
            rows = conn.execute(f"SELECT {ROW}, worker FROM messages WHERE worker = ? AND consumer IS NOT NULL",
                                (worker,)).fetchall()
            conn.execute("UPDATE incarnations SET recovered = 1, expires = MIN(expires, ?) WHERE name = ?",
                         (now, worker))
            return self._charge_started(conn, rows, now)

        dead, back = self._db.write(take_back)
        if back:
            self._bell.ring(READY)
        return dead

    def _charge_started(self, conn: sqlite3.Connection, rows: list[Any], now: float) -> tuple[list[Delivery], int]:
        """Take back rows of dead workers (``ROW`` plus the worker): the ones their worker last
        reported running are charged, the rest go back as they were."""
        running: dict[str, set[str]] = {}
        for name in {row[-1] for row in rows}:
            found = conn.execute("SELECT running FROM incarnations WHERE name = ?", (name,)).fetchone()
            running[name] = set(found[0].split("\n")) if found and found[0] else set()
        started = [row[:-1] for row in rows if f"{row[0]}:{row[6]}" in running[row[-1]]]
        free = [(row[0],) for row in rows if f"{row[0]}:{row[6]}" not in running[row[-1]]]
        conn.executemany(f"{_UNLEASE} WHERE id = ?", free)
        dead, back = self._charge(conn, started, now)
        return dead, back + len(free)

    def finish(self, deliveries: Sequence[Delivery], *, backend: Any = None,
               records: Sequence[tuple[str, bytes, bool]] = (), events: tuple[str, bytes, int] | None = None) -> None:
        """Results, acks and events in one transaction when the results live in this file. Done
        in turn, a process killed between the result and the ack (by the next task it ran, a
        segfault, an OOM kill) left a finished task stored but leased, and it ran again."""
        if not self._shares_file(backend):
            return super().finish(deliveries, backend=backend, records=records, events=events)
        keys = _keys(deliveries)

        def finish(conn: sqlite3.Connection) -> None:
            if records:
                backend.store_in(conn, records)
            if keys:
                conn.executemany(f"DELETE FROM messages WHERE {_IS_HELD}", keys)
            if events is not None:
                log, data, maxlen = events
                append_in(conn, log, [data], maxlen)

        self._db.write(finish)
        if records:
            backend.ring(records)
        if events is not None:
            self._bell.ring(LOGS)

    def _shares_file(self, backend: Any) -> bool:
        """Is ``backend`` a result store in this broker's file (so one transaction writes both)?"""
        from .results import SQLiteBackend

        if not (isinstance(backend, SQLiteBackend) and backend.path == self.path):
            return False
        backend.open()  # its table must exist before our transaction writes to it
        return True

    def finish_fenced(self, consumer: str, items: Sequence[tuple[Delivery | None, Sequence[tuple[str, bytes, bool]]]],
                      *, backend: Any = None) -> list[Delivery]:
        if not self._shares_file(backend):
            return super().finish_fenced(consumer, items, backend=backend)

        def fenced(conn: sqlite3.Connection) -> tuple[list[Delivery], list[tuple[str, bytes, bool]]]:
            dropped: list[Delivery] = []
            stored: list[tuple[str, bytes, bool]] = []
            for delivery, records in items:
                key = None if delivery is None else _parse_tag(delivery.tag)
                if delivery is not None:
                    gone = key is None or conn.execute(
                        f"DELETE FROM messages WHERE {_IS_HELD} AND consumer = ?", (*key, consumer)).rowcount == 0
                    if gone:
                        dropped.append(delivery)
                        continue
                stored += records
            if stored:
                backend.store_in(conn, stored)
            return dropped, stored

        dropped, stored = self._db.write(fenced)
        backend.ring(stored)
        return dropped

    def holding(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []

        def check(conn: sqlite3.Connection) -> list[Delivery]:
            out = []
            for d in deliveries:
                key = _parse_tag(d.tag)
                if key is not None and conn.execute(f"SELECT 1 FROM messages WHERE {_IS_HELD} AND consumer = ?",
                                                    (*key, consumer)).fetchone():
                    out.append(d)
            return out

        return self._db.read(check)

    def _charge(self, conn: sqlite3.Connection, rows: list[Any], now: float) -> tuple[list[Delivery], int]:
        """Count one redelivery for each leased row; bury those past the cap. Returns the buried
        deliveries and how many went back to ready."""
        dead, back = [], []
        for msg_id, queue, priority, body, key, redeliveries, handouts, _consumer in rows:
            count = redeliveries + 1
            if count <= self.max_redeliveries:
                back.append((count, msg_id))
                continue
            conn.execute("INSERT INTO dead_letters (queue, priority, body, key, reason, time) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (queue, priority, body, key,
                          f"redelivered {count} times: its worker died each time", now))
            conn.execute("DELETE FROM messages WHERE id = ?", (msg_id,))
            dead.append(Delivery(queue, priority, body, f"{msg_id}:{handouts}", count))
        conn.executemany(f"{_UNLEASE}, redeliveries = ? WHERE id = ?", back)
        return dead, len(back)

    def release(self, consumer: str, queues: Sequence[str], *, charged: Sequence[Delivery] = ()) -> list[Delivery]:
        if not queues:
            return []
        charged_tags = {d.tag for d in charged}

        def give_back(conn: sqlite3.Connection) -> tuple[list[Delivery], int]:
            rows = conn.execute(f"SELECT {ROW} FROM messages WHERE worker = ? AND consumer = ? "
                                f"AND queue IN ({placeholders(queues)})",
                                (worker_of(consumer), consumer, *queues)).fetchall()
            hit = [row for row in rows if f"{row[0]}:{row[6]}" in charged_tags]
            free = [(row[0],) for row in rows if f"{row[0]}:{row[6]}" not in charged_tags]
            conn.executemany(f"{_UNLEASE} WHERE id = ?", free)
            dead, back = self._charge(conn, hit, time.time())
            return dead, back + len(free)

        dead, back = self._db.write(give_back)
        if back:
            self._bell.ring(READY)
        return dead

    def held(self, worker: str, queues: Sequence[str]) -> list[tuple[str, Delivery]]:
        if not queues:
            return []
        rows = self._db.read(lambda conn: conn.execute(
            f"SELECT {ROW} FROM messages WHERE worker = ? AND consumer IS NOT NULL "
            f"AND queue IN ({placeholders(queues)}) ORDER BY id", (worker, *queues)).fetchall())
        return [(consumer, Delivery(queue, prio, body, f"{msg_id}:{handouts}", redeliveries))
                for msg_id, queue, prio, body, _key, redeliveries, handouts, consumer in rows]

    # -- delayed messages -----------------------------------------------------------------
    def promote(self, queues: Sequence[str], limit: int = 1000) -> float | None:
        if not queues:
            return None
        marks = placeholders(queues)

        def next_due(conn: sqlite3.Connection) -> float | None:
            due = conn.execute(f"SELECT MIN(due) FROM delayed WHERE queue IN ({marks})",
                               tuple(queues)).fetchone()[0]
            return None if due is None else float(due)

        due, now = self._db.read(next_due), time.time()
        if due is None or due > now:
            return None if due is None else due - now

        def move(conn: sqlite3.Connection) -> tuple[int, float | None, float]:
            now = time.time()
            pick = f"SELECT id FROM delayed WHERE queue IN ({marks}) AND due <= ? ORDER BY due, id LIMIT ?"
            args = (*queues, now, limit)
            # Inserted in due order, so the new ids put them at the back of their priority in
            # the order they fell due.
            moved = conn.execute(
                "INSERT INTO messages (queue, priority, body, key, redeliveries) SELECT queue, priority, "
                f"body, key, redeliveries FROM delayed WHERE id IN ({pick}) ORDER BY due, id", args).rowcount
            conn.execute(f"DELETE FROM delayed WHERE id IN ({pick})", args)
            return moved, next_due(conn), now

        moved, due, now = self._db.write(move)
        if moved:
            self._bell.ring(READY)
        return None if due is None else max(0.0, due - now)

    def scheduled(self, queues: Sequence[str], limit: int = 100) -> list[Scheduled]:
        if not queues:
            return []
        rows = self._db.read(lambda conn: conn.execute(
            f"SELECT queue, priority, due, key, body FROM delayed WHERE queue IN ({placeholders(queues)}) "
            "ORDER BY due, id LIMIT ?", (*queues, limit)).fetchall())
        return [Scheduled(*row) for row in rows]

    def remove_scheduled(self, queue: str, key: str) -> bool:
        return bool(self._db.write(lambda conn: conn.execute(
            "DELETE FROM delayed WHERE queue = ? AND key = ?", (queue, key)).rowcount))

    def reschedule(self, queue: str, key: str, delay: float) -> bool:
        return bool(self._db.write(lambda conn: conn.execute(
            "UPDATE delayed SET due = ? WHERE queue = ? AND key = ?",
            (time.time() + max(delay, 0.0), queue, key)).rowcount))
    # -- lifecycle ------------------------------------------------------------------------
    def check(self, *, allow_evicting: bool = False) -> list[str]:
        self._db.read(lambda conn: None)  # opens the file, so a bad path fails here, at start-up
        if self._db.journal_mode != "wal":
            return [f"SQLite broker {self.path}: journal mode is {self._db.journal_mode!r}, not WAL "
                    "(a network file system?): processes will block each other"]
        return []

    def close(self) -> None:
        self._db.close()
        self._bell.close()
