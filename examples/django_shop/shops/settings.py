"""Settings of the "shops" project, trimmed to what the Celery part reads.

The CELERY_* block is the seed's. The broker and result URLs are the one change: the seed
hard-codes 'redis://127.0.0.1:6379/0'; here they come from REDIS_URL, and when it is not set
they are left out, so celeriac uses its embedded SQLite file (or CELERIAC_BROKER_URL /
CELERY_BROKER_URL from the environment) and the shop runs with nothing else installed.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.getenv('DJANGO_SECRET_KEY', 'django-insecure-example-only')
DEBUG = True
INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'django.contrib.staticfiles',
    'store',
]
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.getenv('SHOP_DB', str(BASE_DIR / 'db.sqlite3')),
    }
}
# Django's file-based email backend writes mail to EMAIL_FILE_PATH instead of sending it.
EMAIL_BACKEND = 'django.core.mail.backends.filebased.EmailBackend'
EMAIL_FILE_PATH = os.getenv('SHOP_EMAIL_DIR', str(BASE_DIR / 'sent_emails'))
DEFAULT_FROM_EMAIL = 'shop@example.com'
ADMINS = [('Shop admin', 'admin@example.com')]
TIME_ZONE = 'UTC'
USE_TZ = True

# Celery
if os.getenv('REDIS_URL'):
    CELERY_BROKER_URL = os.environ['REDIS_URL']
    CELERY_RESULT_BACKEND = os.environ['REDIS_URL']
CELERY_TASK_SERIALIZER = 'json'
CELERY_RESULT_SERIALIZER = 'json'
CELERY_ACCEPT_CONTENT = ['json']
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = 30 * 60  # 30 minutes
