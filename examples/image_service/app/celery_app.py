"""The Celery app of the image service: ``celeriac -A app.celery_app worker ...``.

As a Celery project writes it, with ``celery`` -> ``celeriac``. REDIS_URL unset (the default
here) means celeriac's embedded SQLite file, so the service runs with nothing else installed;
set it (``redis://localhost:6379/0``) to run on Redis, as the seed does.
"""

import os

from celeriac import Celery

REDIS_URL = os.getenv("REDIS_URL")

celery_app = Celery(
    "app",
    broker=REDIS_URL,
    backend=REDIS_URL,
    include=["app.tasks"],
)

celery_app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_track_started=True,
    # Timeout: 10 minutes per task (a render takes 30-300 s).
    task_time_limit=10 * 60,
    # Results are kept for 1 hour: long enough for the client to poll the status.
    result_expires=60 * 60,
    # Renders are long: a worker process takes one at a time instead of hoarding the queue.
    worker_prefetch_multiplier=1,
    # high_priority: Premium users' renders; normal_priority: everyone else's;
    # low_priority: cloud uploads, email, chat history.
    task_default_queue="normal_priority",
    task_routes={
        "app.tasks.generate_image_task": {"queue": "normal_priority"},
        "app.tasks.upload_to_cloud_task": {"queue": "low_priority"},
        "app.tasks.send_email_task": {"queue": "low_priority"},
        "app.tasks.save_chat_history_task": {"queue": "low_priority"},
    },
)
