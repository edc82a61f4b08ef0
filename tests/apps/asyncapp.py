"""``async def`` tasks, on coreapp's app (so its settings and marks apply): the asyncio pool
tests run ``celeriac -A asyncapp worker -P asyncio``."""

from __future__ import annotations

import asyncio
import os
import time

from coreapp import app, mark

from celeriac import SoftTimeLimitExceeded

__all__ = ["app"]

app.conf.worker_async_concurrency = int(os.environ.get("CELERIAC_TEST_ASYNC_CONCURRENCY", "100"))


@app.task
async def nap(seconds, tag=""):
    """Await ``seconds``; leave a start and an end mark (the ledger kill tests count)."""
    mark("async-started", f"{tag} {os.getpid()} {time.time():.4f}")
    await asyncio.sleep(seconds)
    mark("async-finished", f"{tag} {os.getpid()} {time.time():.4f}")
    return tag


@app.task(bind=True, acks_late=True)
async def ledger(self, seconds, tag):
    """The kill tests' ledger: each start (and whether it is a redelivery) and each finish."""
    redelivered = int(bool(self.request.delivery_info.get("redelivered")))
    mark("ledger-started", f"{tag} {os.getpid()} {redelivered} {time.time():.4f}")
    await asyncio.sleep(seconds)
    mark("ledger-finished", f"{tag} {os.getpid()}")
    return tag


@app.task(bind=True)
async def who(self, seconds=0.0):
    await asyncio.sleep(seconds)
    return [self.request.id, os.getpid()]


@app.task(soft_time_limit=0.5, time_limit=5)
async def soft_async():
    try:
        await asyncio.sleep(10)
    except SoftTimeLimitExceeded:
        await asyncio.sleep(0.05)  # the loop still serves this task after the soft limit
        mark("soft-async", "caught")
        return "cleaned up"
    return "not interrupted"


@app.task(time_limit=0.5)
async def hard_async():
    mark("hard-async", str(os.getpid()))
    await asyncio.sleep(10)
    return "should never get here"


@app.task(time_limit=0.5)
async def hard_blocking():
    """Never yields: no cancellation can stop it, so the supervisor kills its process."""
    mark("hard-blocking", str(os.getpid()))
    time.sleep(10)
    return "should never get here"


@app.task(bind=True, max_retries=3, default_retry_delay=0.1)
async def flaky_async(self, fail_times):
    mark("flaky-async", str(self.request.retries))
    await asyncio.sleep(0.01)
    if self.request.retries < fail_times:
        raise self.retry(countdown=0.1)
    return self.request.retries


@app.task
def sync_in_async_pool():
    """A plain task on the asyncio pool: runs in the loop's thread executor."""
    import threading

    time.sleep(0.2)
    return threading.current_thread().name


@app.task(rate_limit="5/s")
async def paced_async(tag):
    mark("paced-async", f"{tag} {time.time():.4f}")
    await asyncio.sleep(0.01)
    return tag


@app.task
async def ticker(ticks, every):
    """Gaps between its wake-ups longer than 90 ms: how often the event loop was blocked."""
    long_gaps = 0
    last = time.monotonic()
    for _ in range(ticks):
        await asyncio.sleep(every)
        now = time.monotonic()
        long_gaps += now - last > 0.09
        last = now
    return long_gaps
