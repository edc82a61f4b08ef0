"""The cut-over from a live Celery: reading what a Celery 5 Redis broker holds and moving it
into celeriac's broker (``celeriac migrate-from-celery``)."""
