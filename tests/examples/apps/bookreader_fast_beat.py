"""The book reader's app with its 30-minute beat entry run every second instead, so a test can
watch beat send it (with its queue/priority options) without waiting half an hour. Everything
else, the task and the options included, is the example's own."""

from app.core.celery_app import celery_app

_schedule = dict(celery_app.conf.beat_schedule)
_schedule["close-abandoned-reading-sessions"] = {**_schedule["close-abandoned-reading-sessions"], "schedule": 1.0}
celery_app.conf.beat_schedule = _schedule
