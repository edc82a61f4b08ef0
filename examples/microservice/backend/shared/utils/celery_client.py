"""The client side of the microservice template: sends tasks by name, holds no task code.

The seed's ``backend/shared/utils/celery_client.py`` with ``celery`` -> ``celeriac``, and no
Redis default for ``REDIS_URL`` (unset, it uses celeriac's embedded SQLite file, the same one
the worker uses on this machine).
"""

import os

from celeriac import Celery

REDIS_URL = os.getenv('REDIS_URL')

# This app only SENDS tasks. The names must match the ones the worker registers
# (the explicit name= in celery_worker/tasks.py).
celery_app = Celery('tasks_client', broker=REDIS_URL, backend=REDIS_URL)

celery_app.conf.update(
    task_serializer='json',
    accept_content=['json'],
    result_serializer='json',
    timezone='Europe/Moscow',
    enable_utc=True,
    task_track_started=True,
    result_expires=3600,
)


def call_add_numbers(x: int, y: int):
    return celery_app.send_task('add_numbers', args=[x, y])


def call_send_email(email_to: str, subject: str, body: str):
    return celery_app.send_task('send_email_task', args=[email_to, subject, body])
