"""A settings variant for the django_shop example, as Django projects keep one per environment
(DJANGO_SETTINGS_MODULE=shops_test_settings): the shop's settings with a 1-second task time
limit, so a test can watch CELERY_TASK_TIME_LIMIT being enforced without waiting 30 minutes."""

from shops.settings import *  # noqa: F403

CELERY_TASK_TIME_LIMIT = 1
