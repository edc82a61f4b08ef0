"""The SQLite engine: broker and result store in one file (or two), WAL mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker import SQLiteBroker
    from .results import SQLiteBackend


def open_broker(url: str, **options: Any) -> SQLiteBroker:
    from .broker import SQLiteBroker

    return SQLiteBroker(url, **options)


def open_results(url: str, **options: Any) -> SQLiteBackend:
    from .results import SQLiteBackend

    return SQLiteBackend(url, **options)
