"""Admin endpoints for the reading-sessions cleanup: run it now, run it in the background, stats."""

from fastapi import APIRouter, Depends, Header, HTTPException, Query

from app.core.config import settings
from app.tasks.reading_sessions_tasks import close_abandoned_sessions, get_cleanup_statistics


def require_admin(authorization: str = Header(default="")) -> None:
    if authorization != f"Bearer {settings.ADMIN_TOKEN}":
        raise HTTPException(status_code=401, detail="admin token required")


router = APIRouter(prefix="/admin/reading-sessions", tags=["admin"], dependencies=[Depends(require_admin)])


# Plain `def`: FastAPI runs these in its thread pool, so waiting for the result blocks no one.
@router.get("/cleanup-stats")
def cleanup_stats(hours: int = Query(24, ge=1, le=168)):
    stats = get_cleanup_statistics.apply_async(args=[hours])
    return stats.get(timeout=10)


@router.post("/cleanup")
def run_cleanup():
    result = close_abandoned_sessions.apply_async()
    return result.get(timeout=30)


@router.post("/cleanup-async")
def run_cleanup_async():
    task = close_abandoned_sessions.delay()
    return {
        "task_id": task.id,
        "status": "PENDING",
        "message": f"Cleanup task started with ID: {task.id}. Check status via Flower or Celery API.",
    }
