"""Tasks the Sphinx extension test documents (tests/unit/test_contrib_sphinx.py). No
``from __future__ import annotations``: the documented signatures show real types."""

from celeriac import Celery, shared_task

app = Celery("docapp", broker="memory://docapp")


@app.task
def add(x: int, y: int = 2) -> int:
    """Add two numbers."""
    return x + y


@app.task(bind=True)
def fetch(self, url: str) -> str:  # type: ignore[no-untyped-def]
    """Fetch a page."""
    return url


@shared_task
def shared(n):  # type: ignore[no-untyped-def]
    """A shared task."""
    return n


def helper(a: int) -> int:
    """A plain function, documented as one."""
    return a
