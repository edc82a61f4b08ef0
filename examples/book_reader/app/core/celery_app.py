"""The Celery app: ``celeriac -A app.core.celery_app worker -l info`` and ``... beat -l info``."""

from app.core.config import settings
from celeriac import Celery
from celeriac.schedules import crontab

celery_app = Celery(
    "bookreader",
    broker=settings.REDIS_URL,
    backend=settings.REDIS_URL,
    include=["app.core.tasks", "app.tasks.reading_sessions_tasks"],
)

celery_app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_track_started=True,
    # "Duplicate tasks": acknowledge after the task ends, and put the task back when the
    # process running it dies, instead of failing it.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # "Too much memory": one task at a time per process, and a process is replaced after
    # 50 tasks or once it holds more than 1.5 GB (KiB, as Celery counts it).
    worker_prefetch_multiplier=1,
    worker_max_tasks_per_child=50,
    worker_max_memory_per_child=1_500_000,
    result_expires=3600,
    # Heavy: book parsing and NLP (priority 5); normal: image generation (3); light: cleanup
    # and monitoring (1-2). A worker started without -Q consumes all three.
    task_queues={
        "heavy": {"exchange": "heavy", "routing_key": "heavy"},
        "normal": {"exchange": "normal", "routing_key": "normal"},
        "light": {"exchange": "light", "routing_key": "light"},
    },
    task_default_queue="normal",
    task_routes={
        "app.core.tasks.process_book_task": {"queue": "heavy", "priority": 5},
        "app.core.tasks.generate_image_task": {"queue": "normal", "priority": 3},
        "app.tasks.*": {"queue": "light", "priority": 1},
    },
    beat_schedule={
        "close-abandoned-reading-sessions": {
            "task": "app.tasks.close_abandoned_sessions",
            "schedule": 1800.0,  # every 30 minutes
            "options": {
                "queue": "light",
                "priority": 2,
            },
        },
        "cleanup-old-results": {
            "task": "app.tasks.cleanup_old_task_results",
            "schedule": crontab(hour=3, minute=0),  # daily at 3:00
        },
    },
)
