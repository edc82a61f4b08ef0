"""Reading sessions: close the abandoned ones (every 30 minutes) and report on it."""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from app.core.celery_app import celery_app
from app.core.database import get_session

logger = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(hours=2)


@celery_app.task(
    name="app.tasks.close_abandoned_sessions",
    bind=True,
    max_retries=3,
    default_retry_delay=300,  # 5 minutes
)
def close_abandoned_sessions(self):
    """Close sessions still active 2 hours after they started. Idempotent: a session is closed
    only while it is active, so a duplicate run changes nothing."""
    logger.info("Starting close_abandoned_sessions task")
    try:
        result = asyncio.run(_close_abandoned_sessions())
        logger.info(f"Closed {result['closed_count']} abandoned sessions in {result['execution_time_ms']:.2f}ms")
        return result
    except Exception as e:
        logger.error(f"Error closing abandoned sessions: {e}", exc_info=True)
        raise self.retry(exc=e)


async def _close_abandoned_sessions() -> dict:
    started = time.perf_counter()
    now = datetime.now(UTC)
    deadline = now - ABANDONED_AFTER
    async with get_session() as db:
        sessions = await db.execute(
            "SELECT * FROM reading_sessions WHERE is_active = 1 AND ended_at IS NULL AND started_at < ?",
            (deadline.timestamp(),))
        logger.info(f"Found {len(sessions)} abandoned sessions")
        closed_count = 0
        for session in sessions:
            try:
                duration = int((now.timestamp() - session["started_at"]) // 60)
                await db.execute(
                    "UPDATE reading_sessions SET is_active = 0, ended_at = ?, duration_minutes = ?,"
                    " end_position = COALESCE(end_position, start_position) WHERE id = ? AND is_active = 1",
                    (now.timestamp(), duration, session["id"]))
                closed_count += 1
                logger.debug(f"Closed session {session['id']} for user {session['user_id']}, "
                             f"book {session['book_id']}, duration {duration}min")
            except Exception as e:
                logger.warning(f"Failed to close session {session['id']}: {e}")
        await db.commit()
    logger.info(f"Successfully closed {closed_count}/{len(sessions)} sessions")
    return {
        "closed_count": closed_count,
        "execution_time_ms": round((time.perf_counter() - started) * 1000, 1),
        "deadline": deadline.isoformat(),
        "error": None,
    }


@celery_app.task(name="app.tasks.get_cleanup_statistics", bind=True, max_retries=3, default_retry_delay=60)
def get_cleanup_statistics(self, hours: int = 24):
    """Sessions closed and still active over the last ``hours``."""
    return asyncio.run(_cleanup_statistics(hours))


async def _cleanup_statistics(hours: int) -> dict:
    now = datetime.now(UTC)
    since = (now - timedelta(hours=hours)).timestamp()
    async with get_session() as db:
        [closed] = await db.execute(
            "SELECT COUNT(*) AS total, AVG(duration_minutes) AS avg_duration,"
            " SUM(end_position = start_position) AS no_progress"
            " FROM reading_sessions WHERE is_active = 0 AND ended_at >= ?", (since,))
        [active] = await db.execute("SELECT COUNT(*) AS total FROM reading_sessions WHERE is_active = 1")
    return {
        "total_closed": closed["total"],
        "total_active": active["total"],
        "avg_duration_minutes": round(closed["avg_duration"] or 0.0, 1),
        "no_progress_count": closed["no_progress"] or 0,
        "period_hours": hours,
        "timestamp": now.isoformat(),
    }


@celery_app.task(name="app.tasks.cleanup_old_task_results")
def cleanup_old_task_results():
    """Daily at 3:00. Task results expire by themselves after result_expires (1 hour), in Redis
    and in celeriac's store alike; this drops closed reading sessions older than 90 days."""
    async def cleanup() -> int:
        async with get_session() as db:
            cutoff = (datetime.now(UTC) - timedelta(days=90)).timestamp()
            deleted = await db.execute("DELETE FROM reading_sessions WHERE is_active = 0 AND ended_at < ?"
                                       " RETURNING id", (cutoff,))
            await db.commit()
        return len(deleted)

    return {"deleted_sessions": asyncio.run(cleanup())}
