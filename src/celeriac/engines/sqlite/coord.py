"""The SQLite broker's coordination primitives: the clock, rate slots, claims, keys, maps and
capped logs that beat, revokes and remote control build on. A mixin of ``SQLiteBroker``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ...brokers.base import clamp_priority
from .db import Database
from .wake import Doorbell, block_until

LOGS = ("l",)  # doorbell channel of log readers
READY = ("q",)  # doorbell channel of fetchers (the broker's own READY): a chord's join became ready


class SQLiteCoordination:
    """Mixed into ``SQLiteBroker``, which provides the database and the doorbell."""

    _db: Database
    _bell: Doorbell
    path: str
    #: Each log numbers its entries one by one, so a reader can count the entries between two ids
    #: (what a trim dropped before it read them).
    log_ids_dense = True

    def now(self) -> float:
        return time.time()

    def chord_start(self, chord: str, size: int, join: bytes, *, queue: str, priority: int = 0,
                    ttl: float) -> None:
        def start(conn: sqlite3.Connection) -> None:
            now = time.time()
            for (gone,) in conn.execute("SELECT id FROM chords WHERE expires <= ? LIMIT 100", (now,)).fetchall():
                conn.execute("DELETE FROM chord_members WHERE chord = ?", (gone,))
                conn.execute("DELETE FROM chords WHERE id = ?", (gone,))
            conn.execute("INSERT OR REPLACE INTO chords (id, size, join_body, expires) VALUES (?, ?, ?, ?)",
                         (chord, size, join, now + ttl))

        self._db.write(start)

    def chord_part(self, chord: str, member: str, *, queue: str, priority: int = 0,
                   records: Sequence[tuple[str, bytes, bool]] = (), backend: Any = None,
                   failed: bool = False) -> bool:
        from .results import SQLiteBackend

        same_file = isinstance(backend, SQLiteBackend) and backend.path == self.path
        if records and same_file:
            backend.open()  # its table must exist before this transaction writes to it
        elif records:
            backend.write(records)

        def count(conn: sqlite3.Connection) -> bool:
            if records and same_file:
                backend.store_in(conn, records)
            row = conn.execute("SELECT size, join_body FROM chords WHERE id = ? AND expires > ?",
                               (chord, time.time())).fetchone()
            if row is None:
                return False
            if conn.execute("INSERT OR IGNORE INTO chord_members (chord, member) VALUES (?, ?)",
                            (chord, member)).rowcount == 0:
                return False  # counted before: a re-run after its worker died
            counted = conn.execute("SELECT COUNT(*) FROM chord_members WHERE chord = ?", (chord,)).fetchone()[0]
            if counted != row[0] and not failed:
                return False
            # Fired: the chord is closed to every later member (its member rows go with it).
            conn.execute("DELETE FROM chord_members WHERE chord = ?", (chord,))
            conn.execute("DELETE FROM chords WHERE id = ?", (chord,))
            conn.execute("INSERT OR IGNORE INTO queues (name) VALUES (?)", (queue,))
            conn.execute("INSERT INTO messages (queue, priority, body, key) VALUES (?, ?, ?, '')",
                         (queue, clamp_priority(priority), row[1]))
            return True

        fired: bool = self._db.write(count)
        if records and same_file:
            backend.ring(records)
        if fired:
            self._bell.ring(READY)
        return fired

    def chord_grow(self, chord: str, member: str, *, queue: str) -> bool:
        def grow(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute("SELECT expires FROM chords WHERE id = ? AND expires > ?", (chord, now)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM chord_added WHERE expires <= ?", (now,))
            seq = conn.execute("SELECT COUNT(*) FROM chord_added WHERE chord = ?", (chord,)).fetchone()[0]
            if conn.execute("INSERT OR IGNORE INTO chord_added (chord, member, seq, expires) VALUES (?, ?, ?, ?)",
                            (chord, member, seq, row[0])).rowcount == 1:
                conn.execute("UPDATE chords SET size = size + 1 WHERE id = ?", (chord,))
            return True

        return bool(self._db.write(grow))

    def chord_added(self, chord: str, *, queue: str) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT member FROM chord_added WHERE chord = ? AND expires > ? ORDER BY seq",
                                (chord, time.time())).fetchall()
            return [r[0] for r in rows]

        return self._db.read(read)

    def rate_slot(self, key: str, interval: float) -> float:
        def reserve(conn: sqlite3.Connection) -> float:
            now = time.time()
            row = conn.execute("SELECT tat FROM rate_slots WHERE key = ?", (key,)).fetchone()
            # GCRA: the key remembers when its next slot starts; each caller takes that slot.
            slot = max(row[0], now) if row else now
            conn.execute("INSERT OR REPLACE INTO rate_slots (key, tat) VALUES (?, ?)", (key, slot + interval))
            return slot - now

        return self._db.write(reserve)

    def claim(self, key: str, ttl: float) -> bool:
        def take(conn: sqlite3.Connection) -> bool:
            now = time.time()
            conn.execute("DELETE FROM kv WHERE key = ? AND expires <= ?", (key, now))
            return conn.execute("INSERT OR IGNORE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                                (key, b"1", now + ttl)).rowcount == 1

        return self._db.write(take)

    def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        def store(conn: sqlite3.Connection) -> None:
            now = time.time()
            conn.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                         (key, value, None if ttl is None else now + ttl))
            # Expired keys nobody reads again would pile up; each put sweeps a few.
            conn.execute("DELETE FROM kv WHERE rowid IN "
                         "(SELECT rowid FROM kv WHERE expires <= ? LIMIT 100)", (now,))

        self._db.write(store)

    def get(self, key: str) -> bytes | None:
        row = self._db.read(lambda conn: conn.execute(
            "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (key, time.time())).fetchone())
        return None if row is None else bytes(row[0])

    def delete(self, key: str) -> None:
        self._db.write(lambda conn: conn.execute("DELETE FROM kv WHERE key = ?", (key,)))

    def map_set(self, name: str, field: str, value: bytes) -> None:
        self._db.write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO maps (name, field, value) VALUES (?, ?, ?)", (name, field, value)))

    def map_get(self, name: str) -> dict[str, bytes]:
        rows = self._db.read(lambda conn: conn.execute(
            "SELECT field, value FROM maps WHERE name = ?", (name,)).fetchall())
        return {field: bytes(value) for field, value in rows}

    def map_delete(self, name: str, field: str) -> bool:
        return bool(self._db.write(lambda conn: conn.execute(
            "DELETE FROM maps WHERE name = ? AND field = ?", (name, field)).rowcount))

    def log_append(self, name: str, data: bytes, maxlen: int, ttl: float | None = None) -> str:
        return self._append(name, [data], maxlen, ttl)

    def log_append_many(self, name: str, items: Sequence[bytes], maxlen: int) -> None:
        if items:
            self._append(name, items, maxlen, None)

    def _append(self, name: str, items: Sequence[bytes], maxlen: int, ttl: float | None) -> str:
        seq = self._db.write(lambda conn: append_in(conn, name, items, maxlen, ttl))
        self._bell.ring(LOGS)
        return f"{seq:016d}"  # zero-padded: ids compare as strings as they do as numbers

    def log_last(self, name: str) -> str | None:
        last = self._db.read(lambda conn: conn.execute(
            f"SELECT MAX(seq) FROM logs WHERE name = ? AND {_LOG_LIVE}", (name, name, time.time())
        ).fetchone()[0])
        return None if last is None else f"{last:016d}"

    def log_read(self, name: str, after: str | None, count: int,
                 timeout: float = 0.0) -> list[tuple[str, bytes]]:
        if after == "$":
            start = self._db.read(lambda conn: conn.execute(
                f"SELECT MAX(seq) FROM logs WHERE name = ? AND {_LOG_LIVE}", (name, name, time.time())
            ).fetchone()[0]) or 0
        else:
            start = int(after) if after and after.isdigit() else 0

        def read() -> list[tuple[int, bytes]]:
            return self._db.read(lambda conn: conn.execute(
                f"SELECT seq, data FROM logs WHERE name = ? AND {_LOG_LIVE} AND seq > ? ORDER BY seq LIMIT ?",
                (name, name, time.time(), start, count)).fetchall())

        rows = block_until(read, db=self._db, bell=self._bell, channel=LOGS[0], timeout=timeout)
        return [(f"{seq:016d}", bytes(data)) for seq, data in rows]


_LOG_LIVE = "NOT EXISTS (SELECT 1 FROM log_expiry WHERE name = ? AND expires <= ?)"


def append_in(conn: sqlite3.Connection, name: str, items: Sequence[bytes], maxlen: int,
              ttl: float | None = None) -> int:
    """Append ``items`` to log ``name`` inside the caller's transaction; returns the last seq.
    The caller rings ``LOGS`` after its commit."""
    now = time.time()
    _drop_expired_logs(conn, name, now)
    last = conn.execute("SELECT MAX(seq) FROM logs WHERE name = ?", (name,)).fetchone()[0]
    # A new (or expired and recreated) log starts at the clock in microseconds, so its ids
    # still sort after those of an earlier log of the same name.
    last = int(now * 1_000_000) if last is None else last
    conn.executemany("INSERT INTO logs (name, seq, data) VALUES (?, ?, ?)",
                     [(name, last + i, data) for i, data in enumerate(items, 1)])
    last += len(items)
    # At least the newest entry stays, so the next seq still counts up from it.
    conn.execute("DELETE FROM logs WHERE name = ? AND seq <= ?", (name, last - max(maxlen, 1)))
    if ttl is not None:
        conn.execute("INSERT OR REPLACE INTO log_expiry (name, expires) VALUES (?, ?)", (name, now + ttl))
    return int(last)


def _drop_expired_logs(conn: sqlite3.Connection, name: str, now: float) -> None:
    """Delete logs whose ttl passed: this one (so it restarts empty) and a few others, so reply
    logs nobody reads again do not pile up."""
    names = {n for (n,) in conn.execute(
        "SELECT name FROM log_expiry WHERE expires <= ? ORDER BY expires LIMIT 20", (now,))}
    if conn.execute("SELECT 1 FROM log_expiry WHERE name = ? AND expires <= ?", (name, now)).fetchone():
        names.add(name)
    for expired in names:
        conn.execute("DELETE FROM logs WHERE name = ?", (expired,))
        conn.execute("DELETE FROM log_expiry WHERE name = ?", (expired,))
