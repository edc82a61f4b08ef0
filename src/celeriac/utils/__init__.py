"""Celery's ``celery.utils`` names that Celery code imports: ``celeriac.utils.log``."""
