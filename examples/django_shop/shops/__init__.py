# As in every Celery + Django project: load the Celery app when Django starts, so that
# @shared_task binds to it (and `celeriac -A shops` finds it as shops.celery_app).
from .celery import app as celery_app

__all__ = ('celery_app',)
