# mypy: disable-error-code="untyped-decorator"
"""A Celery 5 app: the producer whose queued work the cut-over test moves, and the worker it
kills while that worker holds countdown tasks (unacked)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

app = Celery("shop", broker=os.environ.get("CELERY_MIGRATE_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.broker_connection_retry_on_startup = True


@app.task(name="shop.record")
def record(*args: Any, **kwargs: Any) -> None:
    # Celery must never run these in the test: its worker is killed before any is due.
    raise AssertionError("ran in Celery")
