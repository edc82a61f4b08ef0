"""celeriac tasks for benchmarks/bench.py. The worker reads the broker URL from BENCH_BROKER_URL
(results go to the same URL: Redis or the SQLite file)."""

from __future__ import annotations

import os

from celeriac import Celery

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")

app = Celery("celeriac_tasks", broker=BROKER_URL, backend=BROKER_URL)
if os.environ.get("BENCH_CELERIAC_TASK_EVENTS") == "0":  # bench.py --celeriac-events off
    app.conf.worker_send_task_events = False  # Celery's default (its workers send events only with -E)


@app.task(name="bench.noop")
def noop() -> None:
    return None


@app.task(name="bench.noop_ignore", ignore_result=True)
def noop_ignore() -> None:
    return None


@app.task(name="bench.echo")
def echo(x: int) -> int:
    return x


@app.task(name="bench.io_sleep")
async def io_sleep(seconds: float) -> None:
    """benchmarks/async_io.py: an I/O-bound task (awaits, holds no CPU)."""
    import asyncio

    await asyncio.sleep(seconds)


if os.environ.get("BENCH_WAIT_REPLICAS", "0") != "0":  # benchmarks/durable_enqueue.py
    app.conf.broker_transport_options = {"wait_replicas": int(os.environ["BENCH_WAIT_REPLICAS"]), "wait_timeout": 2.0}
