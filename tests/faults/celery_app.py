# mypy: disable-error-code="untyped-decorator"
"""The battery's tasks on Celery 5, named and behaving as in celeriac_app.py, on Celery's
defaults except the result backend (the same Redis, as in benchmarks/celery_tasks.py)."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, signals  # type: ignore[import-untyped]

from faults import ledger

URL = os.environ.get("FAULTS_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("faults", broker=URL, backend=URL)
app.conf.broker_connection_retry_on_startup = True
app.conf.beat_schedule = {"tick": {"task": "faults.tick", "schedule": 1.0}}


@signals.worker_process_init.connect
def _born(**_: object) -> None:
    ledger.process_born()


@app.task(name="faults.work", bind=True)
def work(self: Any, seconds: float = 0.0, pad: str = "") -> str:
    token = ledger.started(self.request.id, self.request.hostname)
    if seconds:
        time.sleep(seconds)
    ledger.ended(self.request.id, self.request.hostname, token)
    return token


@app.task(name="faults.die", bind=True, acks_late=True, reject_on_worker_lost=True)
def die(self: Any, how: str) -> None:
    ledger.started(self.request.id, self.request.hostname)
    if how == "exit":
        os._exit(3)
    if how == "abort":
        os.abort()
    import ctypes

    ctypes.string_at(0)


@app.task(name="faults.tick", bind=True)
def tick(self: Any) -> None:
    # Celery stamps no tick on the message: the harness buckets these by the second they ran in.
    ledger.ticked(f"~{round(time.time())}")
