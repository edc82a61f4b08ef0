"""The demo's tasks: the kinds of work the projects celeriac serves run every day.

The worker imports this module by name (``celeriac.demo.tasks``); the broker URL comes from
CELERIAC_BROKER_URL, which ``celeriac demo`` sets for the worker it starts.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from celeriac import Celery, Task

app = Celery("celeriac.demo")
app.conf.update(
    task_track_started=True,
    result_expires=3600,
    task_default_queue="normal_priority",
    task_queues=["high_priority", "normal_priority", "low_priority"],
    task_routes={
        "demo.send_email": {"queue": "low_priority"},
        "demo.save_chat_history": {"queue": "low_priority"},
        "demo.cleanup_old_results": {"queue": "low_priority"},
    },
    worker_prefetch_multiplier=1,
    broker_lease_seconds=6.0,
    beat_schedule={
        # The cars bot runs its cleanup daily at 03:00; the demo runs it every 10 seconds.
        "cleanup-every-10-seconds": {"task": "demo.cleanup_old_results", "schedule": 10.0,
                                     "options": {"queue": "low_priority"}},
    },
)

STEPS = ("loading the model", "encoding the prompt", "denoising", "upscaling", "uploading to the cloud")


@app.task(bind=True, name="demo.generate_image", max_retries=3, default_retry_delay=60, time_limit=600)
def generate_image(self: Task[Any, Any], prompt: str, seconds: float = 20.0) -> dict[str, object]:
    """Like the image service's renders: minutes in production, seconds here, with PROGRESS."""
    ticks = 20
    for tick in range(ticks):
        message = STEPS[min(tick * len(STEPS) // ticks, len(STEPS) - 1)]
        self.update_state(state="PROGRESS", meta={"progress": int(100 * tick / ticks), "message": message})
        time.sleep(seconds / ticks)
    return {"success": True, "prompt": prompt, "filename": f"generated_{int(time.time())}.png"}


@app.task(bind=True, name="demo.send_email", max_retries=3)
def send_email(self: Task[Any, Any], to: str, fail_times: int = 0) -> dict[str, str]:
    """Emails fail on a flaky SMTP server and retry, as the shop's do."""
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError(f"SMTP server refused {to}"), countdown=1.5)
    time.sleep(random.uniform(0.05, 0.2))
    return {"status": "sent", "to": to}


@app.task(name="demo.save_chat_history")
def save_chat_history(user: int) -> int:
    time.sleep(random.uniform(0.01, 0.05))
    return user


@app.task(name="demo.cleanup_old_results")
def cleanup_old_results() -> dict[str, int]:
    """The periodic cleanup the cars bot runs at 03:00."""
    time.sleep(0.5)
    return {"deleted": random.randint(10, 100), "pid": os.getpid()}


@app.task(name="demo.summarize_book", rate_limit="30/m")
def summarize_book(book: int) -> str:
    """A paid AI API call, rate limited cluster-wide like the book reader's."""
    time.sleep(0.1)
    return f"summary of book {book}"
