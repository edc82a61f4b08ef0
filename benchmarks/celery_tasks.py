"""Celery 5 tasks for benchmarks/bench.py: the same three tasks as celeriac_tasks.py, on Celery's
defaults (prefetch multiplier 4, acks early, Redis result backend, JSON)."""

from __future__ import annotations

import os

from celery import Celery

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")

app = Celery("celery_tasks", broker=BROKER_URL, backend=BROKER_URL)
app.conf.broker_connection_retry_on_startup = True  # silences the Celery 6 deprecation warning only


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
def io_sleep(seconds: float) -> None:
    """benchmarks/async_io.py: Celery 5 has no async def tasks; the usual way (seed 004's) is
    to run the coroutine with asyncio.run inside a sync task."""
    import asyncio

    asyncio.run(asyncio.sleep(seconds))
