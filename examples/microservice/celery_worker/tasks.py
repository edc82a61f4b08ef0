"""The worker of the microservice template: the seed's ``celery_worker/tasks.py``.

Changed from the seed: ``from celery`` -> ``from celeriac``, the commands below, and two things
so it runs with nothing installed: ``REDIS_URL`` has no Redis default (unset, celeriac uses its
embedded SQLite file, or CELERIAC_BROKER_URL), and the simulated durations can be shortened
through the environment (the tests do).
"""

import os
import time

from celeriac import Celery

# redis://<host>:<port>/<db>, e.g. redis://redis:6379/0 under docker-compose.
REDIS_URL = os.getenv('REDIS_URL')

# How long the stand-ins for real work take, in seconds.
ADD_NUMBERS_SECONDS = float(os.getenv('ADD_NUMBERS_SECONDS', '5'))
SEND_EMAIL_SECONDS = float(os.getenv('SEND_EMAIL_SECONDS', '10'))

# 'tasks' is this module's name; the explicit task names below are what clients send by.
app = Celery('tasks', broker=REDIS_URL, backend=REDIS_URL)

app.conf.update(
    task_serializer='json',
    accept_content=['json'],
    result_serializer='json',
    timezone='Europe/Moscow',
    enable_utc=True,
    # STARTED is recorded, so a status endpoint can tell "queued" from "running".
    task_track_started=True,
    # Results are kept for an hour.
    result_expires=3600,
)


@app.task(bind=True, name='add_numbers')
def add_numbers(self, x: int, y: int) -> int:
    """Add two numbers, slowly."""
    print(f"Task {self.request.id}: Adding {x} + {y}")
    time.sleep(ADD_NUMBERS_SECONDS)  # stands for a long operation
    result = x + y
    print(f"Task {self.request.id}: Result is {result}")
    return result


@app.task(name='send_email_task')
def send_email_task(email_to: str, subject: str, body: str):
    """Send an email (the SMTP part is not shown, as in the seed)."""
    print(f"Sending email to {email_to} with subject '{subject}'...")
    time.sleep(SEND_EMAIL_SECONDS)  # stands for the SMTP round trip
    print(f"Email to {email_to} sent.")
    return {"status": "success", "email": email_to}

# Run the worker from this directory:
#   celeriac -A tasks worker -l info
# List the registered tasks:
#   celeriac -A tasks inspect registered
