"""celeriac: a distributed task queue with Celery's API."""
__version__ = "0.1.0"
