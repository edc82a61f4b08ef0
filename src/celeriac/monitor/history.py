"""Task history in a SQLite file: what the dashboard shows and searches, kept across restarts.

One row per task: the columns queries filter and sort on, plus the whole :class:`TaskRecord`
as JSON. The id of the last event-log entry folded in is stored in the same transaction as the
rows it changed, so a restarted reader resumes exactly where it stopped and tasks that ran while
it was down still arrive (as long as the capped log kept their events).

Argument text is searched through an FTS5 trigram index (substring search that stays fast at a
million rows); a task's row there is written once, when its arguments are first known, so a
task's later events cost only the update of its own row. Retention is bounded by count
(``max_tasks``, the oldest first seen go first) and by age (``max_age`` seconds since a task's
last event).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from .reader import Gap
from .state import TaskRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT, state TEXT NOT NULL, queue TEXT, worker TEXT,
    received REAL, started REAL, timestamp REAL NOT NULL,
    indexed INTEGER NOT NULL DEFAULT 0,
    record BLOB NOT NULL,
    finished REAL, runtime REAL, wait REAL
);
CREATE INDEX IF NOT EXISTS tasks_timestamp ON tasks(timestamp);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks(name);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks(worker);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks(queue);
CREATE INDEX IF NOT EXISTS tasks_received ON tasks(received);
CREATE INDEX IF NOT EXISTS tasks_started ON tasks(started);
CREATE VIRTUAL TABLE IF NOT EXISTS tasks_text USING fts5(text, tokenize='trigram');
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY, after TEXT NOT NULL, until TEXT NOT NULL,
    since REAL, upto REAL, entries INTEGER, found REAL NOT NULL
);
"""
KEEP_GAPS = 100  # the newest gaps kept in detail; their total count is kept in meta

# Added after the first release of the history: a file written before gets the columns on open.
ADDED_COLUMNS = (("finished", "REAL"), ("runtime", "REAL"), ("wait", "REAL"))
# Covering: the overview's per-minute counts and per-name percentiles read a window of this
# index and never the rows (whose JSON record is most of the file).
OVERVIEW_INDEX = "CREATE INDEX IF NOT EXISTS tasks_finished ON tasks(finished, state, name, runtime, wait)"

_UPSERT = """
INSERT INTO tasks (uuid, name, state, queue, worker, received, started, timestamp, record, finished, runtime, wait)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, state = excluded.state, queue = excluded.queue,
    worker = excluded.worker, received = excluded.received, started = excluded.started,
    timestamp = excluded.timestamp, record = excluded.record, finished = excluded.finished,
    runtime = excluded.runtime, wait = excluded.wait
RETURNING id, indexed
"""
# For a task this process sent itself (a retry from the dashboard): what the events say wins.
_INSERT_NEW = _UPSERT.split("ON CONFLICT")[0] + "ON CONFLICT(uuid) DO NOTHING RETURNING id, indexed"

#: ``seen``: the order tasks were first seen, newest first by default. Rows keep their place when
#: they change, so paging through a busy history neither skips nor repeats a task.
SORTS = ("seen", "name", "state", "received", "started", "timestamp")
# Indexes on one column also hold the row id, so "column = ? ORDER BY id" reads one index in order.
_COLUMN = {"seen": "id"}
_MAX_INT = 2**62
INDEXED_ARGS = 2  # tasks.indexed: 0 not in the text index, 1 without its arguments, 2 with them

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass
class TaskQuery:
    """Which tasks, in which order. ``None`` filters nothing; ``search`` matches a task id prefix
    (under three characters) or a substring of its id, name, args or kwargs (case-insensitive);
    times are epoch seconds on ``received``."""

    state: str | None = None
    name: str | None = None
    queue: str | None = None
    worker: str | None = None
    received_from: float | None = None
    received_to: float | None = None
    search: str | None = None
    sort: str = "seen"
    descending: bool = True
    limit: int | None = 100
    offset: int = 0


def _phrase(term: str) -> str:
    """``term`` as one FTS5 phrase: matched as a substring, never parsed as query syntax."""
    return '"' + term.replace('"', '""') + '"'


def _text(record: TaskRecord) -> str:
    return " ".join(part for part in (record.uuid, record.name, record.args, record.kwargs) if part)


class History:
    """The SQLite task history. Safe to use from several threads: each gets its own connection."""

    def __init__(self, path: str, *, max_tasks: int | None = 100_000, max_age: float | None = None) -> None:
        self.path = path
        self.max_tasks = max_tasks
        self.max_age = max_age
        self._local = threading.local()
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        db = self._db()
        db.executescript(SCHEMA)
        present = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
        for column, kind in ADDED_COLUMNS:
            if column not in present:
                db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {kind}")
        db.execute(OVERVIEW_INDEX)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            # WAL: readers (API requests) never wait for the writer (the event indexer).
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- writing --------------------------------------------------------------------------------
    @property
    def cursor(self) -> str | None:
        """The id of the last event-log entry folded in (None before the first)."""
        row = self._db().execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        return None if row is None else str(row[0])

    def save(self, records: Iterable[TaskRecord], cursor: str | None = None, *, only_new: bool = False,
             gaps: Iterable[Gap] = ()) -> None:
        """Store these tasks' latest state and, in the same transaction, the log position and
        the gaps found reading up to it (so a gap is recorded exactly once, restart or not).
        ``only_new``: leave a task the history already holds as it is."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            fresh: list[tuple[int, str, int, int]] = []
            for r in records:
                values = (r.uuid, r.name, r.state, r.queue, r.worker, r.received, r.started, r.timestamp or 0.0,
                          _encode(r.as_dict()), r.finished, r.runtime, r.wait)
                row = db.execute(_INSERT_NEW if only_new else _UPSERT, values).fetchone()
                if row is None:
                    continue  # only_new, and already there
                has_args = r.args is not None or r.kwargs is not None
                if row[1] == 0 or (row[1] < INDEXED_ARGS and has_args):
                    fresh.append((row[0], _text(r), INDEXED_ARGS if has_args else 1, row[1]))
            if fresh:
                db.executemany("DELETE FROM tasks_text WHERE rowid = ?", [(f[0],) for f in fresh if f[3]])
                db.executemany("INSERT INTO tasks_text (rowid, text) VALUES (?, ?)", [f[:2] for f in fresh])
                db.executemany("UPDATE tasks SET indexed = ? WHERE id = ?", [(f[2], f[0]) for f in fresh])
            if cursor is not None:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?)", (cursor,))
            gaps = list(gaps)
            if gaps:
                now = time.time()
                db.executemany("INSERT INTO gaps (after, until, since, upto, entries, found) VALUES (?, ?, ?, ?, ?, ?)",
                               [(g.after, g.until, g.since, g.to, g.entries, now) for g in gaps])
                db.execute("DELETE FROM gaps WHERE id <= (SELECT MAX(id) FROM gaps) - ?", (KEEP_GAPS,))
                db.execute("INSERT INTO meta (key, value) VALUES ('gaps', ?) ON CONFLICT(key) DO UPDATE"
                           " SET value = CAST(value AS INTEGER) + excluded.value", (len(gaps),))
                known = sum(g.entries or 0 for g in gaps)
                db.execute("INSERT INTO meta (key, value) VALUES ('gap_entries', ?) ON CONFLICT(key) DO UPDATE"
                           " SET value = CAST(value AS INTEGER) + excluded.value", (known,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def unfinished(self, until: float | None, limit: int = 10_000) -> list[TaskRecord]:
        """Tasks not in a final state whose last event is no newer than ``until`` (any, with None),
        newest first: those whose final events may have been lost in a gap of the log."""
        sql = "SELECT record FROM tasks WHERE state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED')"
        params: list[Any] = []
        if until is not None:
            sql += " AND timestamp <= ?"
            params.append(until)
        rows = self._db().execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [TaskRecord.from_dict(_decode(row[0])) for row in rows]

    def gaps(self, limit: int = 10) -> list[Gap]:
        """The newest gaps in what was read of the event log, newest first."""
        rows = self._db().execute("SELECT after, until, since, upto, entries FROM gaps ORDER BY id DESC LIMIT ?",
                                  (limit,)).fetchall()
        return [Gap(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def gap_totals(self) -> tuple[int, int]:
        """How many gaps were ever found, and how many log entries they are known to have lost."""
        rows = dict(self._db().execute("SELECT key, value FROM meta WHERE key IN ('gaps', 'gap_entries')").fetchall())
        return int(rows.get("gaps", 0)), int(rows.get("gap_entries", 0))

    def last_event_time(self) -> float | None:
        """The newest task event time stored: where a gap found on restart began, at the latest."""
        row = self._db().execute("SELECT MAX(timestamp) FROM tasks").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def prune(self, now: float | None = None) -> int:
        """Drop tasks past the retention bounds; returns how many went."""
        db = self._db()
        removed = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.max_tasks is not None:
                row = db.execute("SELECT id FROM tasks ORDER BY id DESC LIMIT 1 OFFSET ?",
                                 (self.max_tasks,)).fetchone()
                if row is not None:
                    db.execute("DELETE FROM tasks_text WHERE rowid <= ?", (row[0],))
                    removed += db.execute("DELETE FROM tasks WHERE id <= ?", (row[0],)).rowcount
            if self.max_age is not None:
                horizon = (now if now is not None else time.time()) - self.max_age
                db.execute("DELETE FROM tasks_text WHERE rowid IN (SELECT id FROM tasks WHERE timestamp < ?)",
                           (horizon,))
                removed += db.execute("DELETE FROM tasks WHERE timestamp < ?", (horizon,)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return removed

    # -- reading --------------------------------------------------------------------------------
    def get(self, task_id: str) -> TaskRecord | None:
        row = self._db().execute("SELECT record FROM tasks WHERE uuid = ?", (task_id,)).fetchone()
        return None if row is None else TaskRecord.from_dict(_decode(row[0]))

    def get_many(self, task_ids: Iterable[str]) -> list[TaskRecord]:
        """The stored tasks among ``task_ids`` (unknown ids are left out), in one query per 500."""
        wanted = list(task_ids)
        out: list[TaskRecord] = []
        db = self._db()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = db.execute(f"SELECT record FROM tasks WHERE uuid IN ({','.join('?' * len(chunk))})", chunk)
            out += [TaskRecord.from_dict(_decode(row[0])) for row in rows]
        return out

    def query(self, q: TaskQuery) -> list[TaskRecord]:
        if q.sort not in SORTS:
            raise ValueError(f"cannot sort by {q.sort!r}; choose from {', '.join(SORTS)}")
        clauses, params = self._filters(q)
        direction = "DESC" if q.descending else "ASC"
        column = _COLUMN.get(q.sort, q.sort)
        # FTS5 reads its query as C text: a NUL would end it mid-phrase ("unterminated string").
        term = (q.search or "").replace("\x00", "").strip()
        if len(term) >= 3 and q.sort == "seen":
            # Driven by the text index in row-id order, so LIMIT stops the match early even when
            # most of the history matches; the text index's rowid is the task's id.
            sql = ("SELECT t.record FROM tasks_text x JOIN tasks t ON t.id = x.rowid "
                   f"WHERE x.tasks_text MATCH ? {''.join(' AND t.' + c for c in clauses)} "
                   f"ORDER BY x.rowid {direction} LIMIT ? OFFSET ?")
            params.insert(0, _phrase(term))
        else:
            if len(term) >= 3:
                clauses.append("id IN (SELECT rowid FROM tasks_text WHERE tasks_text MATCH ?)")
                params.append(_phrase(term))
            elif term:
                clauses.append("uuid >= ? AND uuid < ?")  # a short id prefix, on the unique index
                params += [term, term + "\U0010ffff"]
            where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
            order = f"{column} {direction}" if column == "id" else f"{column} {direction}, id {direction}"
            sql = f"SELECT record FROM tasks {where} ORDER BY {order} LIMIT ? OFFSET ?"
        # SQLite integers stop at 2**63: a larger limit or offset means "all" or "past the end".
        limit = -1 if q.limit is None or q.limit > _MAX_INT else q.limit
        rows = self._db().execute(sql, [*params, limit, min(max(q.offset, 0), _MAX_INT)])
        return [TaskRecord.from_dict(_decode(row[0])) for row in rows]

    @staticmethod
    def _filters(q: TaskQuery) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("state", q.state), ("name", q.name), ("queue", q.queue), ("worker", q.worker)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if q.received_from is not None:
            clauses.append("received >= ?")
            params.append(q.received_from)
        if q.received_to is not None:
            clauses.append("received <= ?")
            params.append(q.received_to)
        return clauses, params

    def names(self) -> list[str]:
        """Every task name in the history, sorted."""
        return self._distinct("name")

    def workers(self) -> list[str]:
        """Every worker that ran a task in the history, sorted."""
        return self._distinct("worker")

    def _distinct(self, column: str) -> list[str]:
        # One index seek per value instead of a scan of every row.
        db = self._db()
        out: list[str] = []
        row = db.execute(f"SELECT min({column}) FROM tasks").fetchone()
        while row is not None and row[0] is not None:
            out.append(row[0])
            row = db.execute(f"SELECT min({column}) FROM tasks WHERE {column} > ?", (row[0],)).fetchone()
        return out

    def count(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM tasks").fetchone()[0])

    # -- the overview -----------------------------------------------------------------------------
    def outcomes(self, since: float, bucket: float = 60.0) -> dict[tuple[float, str], int]:
        """How many tasks finished in each ``bucket`` seconds since ``since``, by final state:
        ``{(bucket start, state): count}``. Reads only the covering index's window."""
        rows = self._db().execute(
            "SELECT CAST((finished - ?) / ? AS INTEGER) AS slot, state, count(*) FROM tasks "
            "WHERE finished >= ? GROUP BY slot, state", (since, bucket, since))
        return {(since + slot * bucket, state): count for slot, state, count in rows}

    def timings(self, since: float, limit: int = 100_000) -> dict[str, Timings]:
        """Per task name, the wait and runtime percentiles of the tasks that finished since
        ``since`` (the newest ``limit`` of them at most, so a busy history costs a bounded read)."""
        rows = self._db().execute(
            "SELECT name, runtime, wait FROM tasks WHERE finished >= ? ORDER BY finished DESC LIMIT ?",
            (since, limit))
        runtimes: dict[str, list[float]] = {}
        waits: dict[str, list[float]] = {}
        for name, runtime, wait in rows:
            key = name or "?"
            runtimes.setdefault(key, [])
            waits.setdefault(key, [])
            if runtime is not None:
                runtimes[key].append(runtime)
            if wait is not None:
                waits[key].append(wait)
        return {name: Timings(len(runtimes[name]), percentiles(waits[name]), percentiles(runtimes[name]))
                for name in sorted(runtimes)}


QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Timings:
    """Seconds: the p50, p95 and p99 of the wait before starting and of the runtime."""

    count: int
    wait: tuple[float, float, float] | None
    runtime: tuple[float, float, float] | None


def percentiles(values: list[float]) -> tuple[float, float, float] | None:
    """p50, p95, p99 by the nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    last = len(ordered) - 1
    p50, p95, p99 = (ordered[min(last, max(0, math.ceil(q * len(ordered)) - 1))] for q in QUANTILES)
    return p50, p95, p99
