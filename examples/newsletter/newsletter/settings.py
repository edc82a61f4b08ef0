"""Django-style settings with the CELERY_ block a Celery 5 project carries.

Some of these settings are Celery's and celeriac does not implement them (the cache backend,
the worker's state database): celeriac loads them with a warning that says what it does instead,
as a migrating project needs; a misspelt setting would still be an error.
"""

import os

from kombu import Exchange, Queue

INSTALLED_APPS = ["newsletter.mailing"]
LEDGER = os.environ.get("NEWSLETTER_LEDGER", "ledger.jsonl")

if os.environ.get("REDIS_URL"):
    CELERY_BROKER_URL = os.environ["REDIS_URL"]
    CELERY_RESULT_BACKEND = os.environ["REDIS_URL"]
CELERY_CACHE_BACKEND = "default"                # django-celery-results' cache; not celeriac's
CELERY_WORKER_STATE_DB = "/tmp/newsletter-state"  # celeriac keeps revokes in the broker
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("mail", Exchange("mail"), routing_key="mail", queue_arguments={"x-max-priority": 10}),
)


def route_task(name, args, kwargs, options, task=None, **kw):
    """Everything that talks to the mail server goes to the mail queue."""
    if name.startswith("newsletter.mailing.tasks.send_"):
        return {"queue": "mail"}
    return None


CELERY_TASK_ROUTES = (route_task,)
