"""Synchronisation with Google Sheets, where the operators keep channels and subscribers.

A stand-in for the Sheets API: the two sheets are CSV files in CARS_BOT_SHEETS_DIR
(``channels.csv``: username,active; ``subscribers.csv``: user_id,expires_at).
"""

import csv
import os

from cars_bot.celery_app import app
from cars_bot.database import session


def read_sheet(name: str) -> list[dict[str, str]]:
    path = os.path.join(os.getenv("CARS_BOT_SHEETS_DIR", "sheets"), f"{name}.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def sync_channels_task():
    """Every minute: the channels to monitor, from the sheet."""
    rows = read_sheet("channels")
    with session() as conn:
        conn.executemany("INSERT OR REPLACE INTO channels VALUES (?, ?)",
                         [(r["username"], int(r.get("active", "1") or 1)) for r in rows])
    return {"channels": len(rows)}


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def sync_subscribers_task():
    """Every 5 minutes: paid subscribers and when their subscription ends, from the sheet."""
    rows = read_sheet("subscribers")
    with session() as conn:
        conn.executemany("INSERT OR REPLACE INTO subscribers VALUES (?, ?, 1)",
                         [(int(r["user_id"]), float(r["expires_at"])) for r in rows])
    return {"subscribers": len(rows)}
