"""An async database session, as the tasks' ``async with get_session() as db`` expects.

The seed uses SQLAlchemy's async engine; here the standard library's sqlite3 runs in a worker
thread (``asyncio.to_thread``), which is what an async driver for SQLite does too.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from app.core.config import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS reading_sessions (
    id TEXT PRIMARY KEY, user_id TEXT, book_id TEXT, is_active INTEGER, started_at REAL, ended_at REAL,
    start_position INTEGER, end_position INTEGER, duration_minutes INTEGER
);
"""


class AsyncSession:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await asyncio.to_thread(lambda: self._conn.execute(sql, params).fetchall())

    async def commit(self) -> None:
        await asyncio.to_thread(self._conn.commit)


@asynccontextmanager
async def get_session() -> AsyncIterator[AsyncSession]:
    def connect() -> sqlite3.Connection:
        # check_same_thread=False: to_thread may run each statement on a different thread.
        conn = sqlite3.connect(settings.DATABASE_PATH, timeout=10, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.executescript(SCHEMA)
        return conn

    conn = await asyncio.to_thread(connect)
    try:
        yield AsyncSession(conn)
    finally:
        await asyncio.to_thread(conn.close)
