"""The bot's database (CARS_BOT_DB, SQLite): posts, channels, subscribers and stats."""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, channel TEXT, text TEXT, status TEXT DEFAULT 'new',
                                  brand TEXT, year INTEGER, price INTEGER, created_at REAL);
CREATE TABLE IF NOT EXISTS channels (username TEXT PRIMARY KEY, active INTEGER);
CREATE TABLE IF NOT EXISTS subscribers (user_id INTEGER PRIMARY KEY, expires_at REAL, active INTEGER);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value TEXT);
"""


@contextmanager
def session() -> Iterator[sqlite3.Connection]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    conn = sqlite3.connect(os.getenv("CARS_BOT_DB", "cars_bot.db"), timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.executescript(SCHEMA)
        with conn:
            yield conn
    finally:
        conn.close()


def get_post(conn: sqlite3.Connection, post_id: int) -> sqlite3.Row:
    post = conn.execute("SELECT * FROM posts WHERE id = ?", (post_id,)).fetchone()
    if post is None:
        raise LookupError(f"post {post_id} does not exist")
    return post
