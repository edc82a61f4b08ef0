"""Monitoring and maintenance: analytics, subscriptions, system stats, old data."""

import json
import time

from cars_bot.celery_app import app
from cars_bot.database import session

RESULT_MAX_AGE = 30 * 24 * 3600


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def update_analytics_task():
    """Hourly: published posts per brand."""
    with session() as conn:
        rows = conn.execute("SELECT brand, COUNT(*) FROM posts WHERE status = 'published' GROUP BY brand").fetchall()
        by_brand = {brand: count for brand, count in rows}
        conn.execute("INSERT OR REPLACE INTO stats VALUES ('published_by_brand', ?)", (json.dumps(by_brand),))
    return by_brand


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def check_subscriptions_task():
    """Daily at 00:00: switch off subscriptions that have ended."""
    with session() as conn:
        expired = conn.execute("UPDATE subscribers SET active = 0 WHERE active = 1 AND expires_at < ?",
                               (time.time(),)).rowcount
    return {"expired": expired}


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def collect_stats_task():
    """Every 15 minutes: queue depths and posts by status, for the admin's /stats."""
    queues = {q.name: {"ready": q.ready_total, "delayed": q.delayed, "running": q.unacked}
              for q in app.control.queues()}
    with session() as conn:
        posts = dict(conn.execute("SELECT status, COUNT(*) FROM posts GROUP BY status").fetchall())
        conn.execute("INSERT OR REPLACE INTO stats VALUES ('system', ?)",
                     (json.dumps({"queues": queues, "posts": posts}),))
    return {"queues": queues, "posts": posts}


@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def cleanup_old_results_task():
    """Daily at 03:00: drop rejected posts older than 30 days (the bot's own processing results;
    task results in the broker expire by result_expires)."""
    with session() as conn:
        deleted = conn.execute("DELETE FROM posts WHERE status = 'rejected' AND created_at < ?",
                               (time.time() - RESULT_MAX_AGE,)).rowcount
    return {"deleted": deleted}
