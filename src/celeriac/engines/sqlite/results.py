"""Results in one SQLite file (WAL), shared by the processes of one machine.

The file may be the broker's own (``sqlite:///celeriac.db`` for both): the table is ``results``.
Expired records read as absent at once and are deleted a hundred at a time by later writes.

``wait_ready`` sleeps on the doorbell of ``engines/sqlite/wake.py``: each write of a ready record
rings the channel of its task id (about 1 ms from ``store`` to the waiter returning); where the
doorbell cannot be used, a ``PRAGMA data_version`` poll with backoff capped at 50 ms takes over.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from ...backends.base import ResultBackend
from .db import Database, sqlite_path
from .wake import Doorbell, block_until, channel_for

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS results (
        task_id TEXT PRIMARY KEY,
        data BLOB NOT NULL,
        ready INTEGER NOT NULL,
        expires REAL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS results_expires ON results (expires) WHERE expires IS NOT NULL",
)

_LIVE = "task_id = ? AND (expires IS NULL OR expires > ?)"


def _channel(task_id: str) -> str:
    return channel_for(task_id, "r")


class SQLiteBackend(ResultBackend):
    """A result store in one SQLite file (see the module docstring)."""

    schemes = ("sqlite",)

    def __init__(self, url: str, *, expires: float | None = 86400.0, durable: bool = False) -> None:
        super().__init__(url, expires=expires)
        self.path = sqlite_path(url)
        self._db = Database(self.path, SCHEMA, durable=durable, what="SQLite result store")
        self._bell = Doorbell(self.path)
        self._opened = False  # the table, once made, stays: a fork need not make it again

    def write(self, records: Sequence[tuple[str, bytes, bool]]) -> None:
        if not records:
            return
        self._db.write(lambda conn: self.store_in(conn, records))
        self.ring(records)

    def store_in(self, conn: sqlite3.Connection, records: Sequence[tuple[str, bytes, bool]]) -> None:
        """Write ``records`` inside the caller's transaction on this file (the broker's fenced
        finish stores results and acks in one transaction when both live in one file)."""
        now = time.time()
        expires = None if self.expires is None else now + self.expires
        conn.executemany("INSERT OR REPLACE INTO results (task_id, data, ready, expires) "
                         "VALUES (?, ?, ?, ?)",
                         [(task_id, data, int(ready), expires) for task_id, data, ready in records])
        conn.execute("DELETE FROM results WHERE task_id IN "
                     "(SELECT task_id FROM results WHERE expires <= ? LIMIT 100)", (now,))

    def open(self) -> None:
        """Open the file now (creating the results table); once is enough."""
        if not self._opened:
            self._db.read(lambda conn: None)
            self._opened = True

    def ring(self, records: Sequence[tuple[str, bytes, bool]]) -> None:
        self._bell.ring({_channel(task_id) for task_id, _, ready in records if ready})

    def read(self, task_id: str) -> bytes | None:
        row = self._db.read(lambda conn: conn.execute(
            f"SELECT data FROM results WHERE {_LIVE}", (task_id, time.time())).fetchone())
        return None if row is None else bytes(row[0])

    def read_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        def fetch(conn: sqlite3.Connection) -> list[bytes | None]:
            now = time.time()
            rows = [conn.execute(f"SELECT data FROM results WHERE {_LIVE}", (tid, now)).fetchone()
                    for tid in task_ids]
            return [None if row is None else bytes(row[0]) for row in rows]

        return self._db.read(fetch)

    def delete(self, task_id: str) -> None:
        self._db.write(lambda conn: conn.execute("DELETE FROM results WHERE task_id = ?", (task_id,)))

    def wait_ready(self, task_id: str, timeout: float) -> bool:
        def ready() -> bool:
            row = self._db.read(lambda conn: conn.execute(
                f"SELECT ready FROM results WHERE {_LIVE}", (task_id, time.time())).fetchone())
            return bool(row and row[0])

        return block_until(ready, db=self._db, bell=self._bell, channel=_channel(task_id), timeout=timeout)

    def close(self) -> None:
        self._db.close()
        self._bell.close()
