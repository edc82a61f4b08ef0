import os

from celeriac import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")

app = Celery("newsletter")
app.config_from_object("newsletter.settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["newsletter.mailing"])

from . import signals  # noqa: E402,F401  (handlers connect when the app is made)
