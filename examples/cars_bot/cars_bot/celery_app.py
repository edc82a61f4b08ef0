"""The bot's Celery app: ``celeriac -A cars_bot.celery_app worker -l info -c 4`` and ``... beat -l info``.

As the seed's ``celery_app.py`` describes it: Redis from REDIS_URL (unset here: celeriac's
embedded SQLite file), JSON, UTC, five queues with priorities, soft/hard limits 25/30 min,
prefetch 2, a process recycled after 100 tasks, and six periodic jobs.
"""

import os

from celeriac import Celery
from celeriac.schedules import crontab

REDIS_URL = os.getenv("REDIS_URL")

app = Celery(
    "cars_bot",
    broker=REDIS_URL,
    backend=REDIS_URL,
    include=[
        "cars_bot.tasks.ai_tasks",
        "cars_bot.tasks.publishing_tasks",
        "cars_bot.tasks.sheets_tasks",
        "cars_bot.tasks.monitoring_tasks",
    ],
)

app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_track_started=True,
    # Hard limit 30 minutes, soft limit 25: a stuck task gets 5 minutes to clean up.
    task_time_limit=30 * 60,
    task_soft_time_limit=25 * 60,
    worker_prefetch_multiplier=2,
    # A pool process is replaced after 100 tasks (the AI libraries leak memory).
    worker_max_tasks_per_child=100,
    result_expires=24 * 3600,
    # The five queues; a worker started without -Q consumes them all.
    task_queues={
        "default": {"exchange": "default", "routing_key": "default"},
        "ai_processing": {"exchange": "ai_processing", "routing_key": "ai_processing"},
        "publishing": {"exchange": "publishing", "routing_key": "publishing"},
        "sheets_sync": {"exchange": "sheets_sync", "routing_key": "sheets_sync"},
        "monitoring": {"exchange": "monitoring", "routing_key": "monitoring"},
    },
    task_default_queue="default",
    task_default_priority=5,
    # Priorities: higher runs first. AI processing of user-facing posts comes before all else.
    task_routes={
        "cars_bot.tasks.ai_tasks.*": {"queue": "ai_processing", "priority": 10},
        "cars_bot.tasks.publishing_tasks.*": {"queue": "publishing", "priority": 5},
        "cars_bot.tasks.sheets_tasks.*": {"queue": "sheets_sync", "priority": 3},
        "cars_bot.tasks.monitoring_tasks.*": {"queue": "monitoring", "priority": 3},
    },
    beat_schedule={
        "sync-channels": {
            "task": "cars_bot.tasks.sheets_tasks.sync_channels_task",
            "schedule": crontab(),  # every minute
        },
        "sync-subscribers": {
            "task": "cars_bot.tasks.sheets_tasks.sync_subscribers_task",
            "schedule": crontab(minute="*/5"),
        },
        "update-analytics": {
            "task": "cars_bot.tasks.monitoring_tasks.update_analytics_task",
            "schedule": crontab(minute=0),  # hourly
        },
        "check-subscriptions": {
            "task": "cars_bot.tasks.monitoring_tasks.check_subscriptions_task",
            "schedule": crontab(hour=0, minute=0),
        },
        "collect-stats": {
            "task": "cars_bot.tasks.monitoring_tasks.collect_stats_task",
            "schedule": crontab(minute="*/15"),
        },
        "cleanup-old-results": {
            "task": "cars_bot.tasks.monitoring_tasks.cleanup_old_results_task",
            "schedule": crontab(hour=3, minute=0),
        },
    },
)
