"""An app with result_extended on, for tests/integration/test_result_extended.py."""

from __future__ import annotations

from celeriac import Celery

app = Celery("extendedapp")
app.conf.update(result_extended=True, worker_shutdown_timeout=5)


@app.task
def add(x, y):
    return x + y


@app.task(throws=(KeyError,))
def lookup(key):
    """Expected to raise KeyError for unknown keys (Celery's ``throws``)."""
    raise KeyError(key)


@app.task
def broken(key):
    raise KeyError(key)
