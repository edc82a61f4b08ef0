"""The battery's tasks on celeriac. Every setting a row varies comes from the environment the
harness gives the worker: FAULTS_BROKER_URL, FAULTS_LEASE, FAULTS_HEARTBEAT, FAULTS_LEDGER, and
FAULTS_TRANSPORT (broker_transport_options as JSON: the Sentinel master's name, wait_replicas)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celeriac import Celery, signals
from faults import ledger

app = Celery("faults", broker=os.environ.get("FAULTS_BROKER_URL", "memory://"))
app.conf.update(
    broker_lease_seconds=float(os.environ.get("FAULTS_LEASE", "2")),
    worker_heartbeat_interval=float(os.environ.get("FAULTS_HEARTBEAT", "0.5")),
    worker_shutdown_timeout=10.0,
    beat_schedule={"tick": {"task": "faults.tick", "schedule": 1.0}},
)
if os.environ.get("FAULTS_TRANSPORT"):
    app.conf.broker_transport_options = json.loads(os.environ["FAULTS_TRANSPORT"])


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
    """Poison: takes its process down every time it runs, each way a process can go."""
    ledger.started(self.request.id, self.request.hostname)
    if how == "exit":
        os._exit(3)
    if how == "abort":
        os.abort()
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV


@app.task(name="faults.tick", bind=True)
def tick(self: Any) -> None:
    ledger.ticked(str(self.request.headers.get("periodic_task_tick")))
