"""The SQLite broker off the per-task path: queue statistics, purge, dead letters (listed,
retried, dropped), the known queues and the worker registry. A mixin of ``SQLiteBroker``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...brokers.base import PRIORITY_LEVELS, DeadLetter, QueueStats, WorkerRecord, worker_name
from .coord import READY
from .db import Database, placeholders
from .wake import Doorbell


class SQLiteAdmin:
    """Mixed into ``SQLiteBroker``, which provides the database and the doorbell."""

    _db: Database
    _bell: Doorbell

    if TYPE_CHECKING:
        @property
        def worker_retention(self) -> float: ...  # Broker's

    def stats(self, queues: Sequence[str]) -> list[QueueStats]:
        def count(conn: sqlite3.Connection, sql: str, queue: str) -> int:
            return int(conn.execute(sql, (queue,)).fetchone()[0])

        def collect(conn: sqlite3.Connection) -> list[QueueStats]:
            out = []
            for queue in queues:
                ready = [0] * PRIORITY_LEVELS
                for prio, n in conn.execute("SELECT priority, COUNT(*) FROM messages WHERE queue = ? "
                                            "AND consumer IS NULL GROUP BY priority", (queue,)):
                    ready[prio] = n
                out.append(QueueStats(
                    queue, ready,
                    count(conn, "SELECT COUNT(*) FROM delayed WHERE queue = ?", queue),
                    count(conn, "SELECT COUNT(*) FROM messages WHERE queue = ? "
                                "AND consumer IS NOT NULL", queue),
                    count(conn, "SELECT COUNT(*) FROM dead_letters WHERE queue = ?", queue)))
            return out

        return self._db.read(collect)

    def purge(self, queues: Sequence[str]) -> int:
        if not queues:
            return 0
        marks, args = placeholders(queues), tuple(queues)
        return self._db.write(lambda conn: conn.execute(
            f"DELETE FROM messages WHERE queue IN ({marks}) AND consumer IS NULL", args).rowcount
            + conn.execute(f"DELETE FROM delayed WHERE queue IN ({marks})", args).rowcount)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.read(lambda conn: conn.execute(
            "SELECT id, body, reason, time FROM dead_letters WHERE queue = ? ORDER BY id LIMIT ?",
            (queue, limit)).fetchall())
        return [DeadLetter(queue, str(i), body, reason, when) for i, body, reason, when in rows]

    def _dead_where(self, queue: str, ids: Sequence[str] | None) -> tuple[str, tuple[Any, ...]] | None:
        if ids is None:
            return "queue = ?", (queue,)
        numbers = [int(i) for i in ids if i.isdigit()]
        return (f"queue = ? AND id IN ({placeholders(numbers)})", (queue, *numbers)) if numbers else None

    def retry_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if (where := self._dead_where(queue, ids)) is None:
            return 0

        def revive(conn: sqlite3.Connection) -> int:
            n = conn.execute("INSERT INTO messages (queue, priority, body, key) SELECT queue, priority, "
                             f"body, key FROM dead_letters WHERE {where[0]} ORDER BY id", where[1]).rowcount
            conn.execute(f"DELETE FROM dead_letters WHERE {where[0]}", where[1])
            return n

        n = self._db.write(revive)
        if n:
            self._bell.ring(READY)
        return n

    def drop_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if (where := self._dead_where(queue, ids)) is None:
            return 0
        return self._db.write(lambda conn: conn.execute(
            f"DELETE FROM dead_letters WHERE {where[0]}", where[1]).rowcount)

    def queues(self) -> list[str]:
        return [name for (name,) in self._db.read(
            lambda conn: conn.execute("SELECT name FROM queues ORDER BY name").fetchall())]

    def workers(self) -> list[WorkerRecord]:
        now = time.time()
        rows = self._db.read(lambda conn: conn.execute(
            "SELECT name, info, last_seen, expires, recovered FROM incarnations WHERE last_seen >= ? ORDER BY name",
            (now - self.worker_retention,)).fetchall())
        return [WorkerRecord(worker_name(name), info, expires >= now and not recovered, seen, name)
                for name, info, seen, expires, recovered in rows]
