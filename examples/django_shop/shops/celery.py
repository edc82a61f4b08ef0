"""The Celery app and its periodic tasks: ``celeriac -A shops worker`` / ``celeriac -A shops beat``."""

import os

from celeriac import Celery
from celeriac.schedules import crontab

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shops.settings')

app = Celery('shops')

# A Django project writes config_from_object('django.conf:settings', namespace='CELERY').
# Django is not installed for this example, so the settings module django.conf.settings would
# wrap is read directly: the same CELERY_* names, the same namespace.
app.config_from_object(os.environ['DJANGO_SETTINGS_MODULE'], namespace='CELERY')

# Django's form is app.autodiscover_tasks(), which reads INSTALLED_APPS through Django;
# without it, the project's own apps are named.
app.autodiscover_tasks(['store'])

app.conf.beat_schedule = {
    'send-pending-emails': {
        'task': 'store.tasks.send_pending_emails',
        'schedule': crontab(minute='*/15'),  # every 15 minutes
    },
    'cleanup-old-carts': {
        'task': 'store.tasks.cleanup_old_carts',
        'schedule': crontab(hour=3, minute=0),  # 3:00 AM
    },
    'generate-daily-report': {
        'task': 'store.tasks.generate_daily_report',
        'schedule': crontab(hour=0, minute=0),  # midnight
    },
}
