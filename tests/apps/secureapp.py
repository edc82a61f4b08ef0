"""Tasks the security tests run in real worker processes (``-A secureapp``).

CELERIAC_TEST_SIGNING_KEY sets task_message_signing_key and CELERIAC_TEST_REDACT (comma
separated) task_redact_args, so a test gives the worker the same settings as its own client.
Runs leave one line each in CELERIAC_TEST_DIR/ran, which outlives the process that wrote it.
"""

from __future__ import annotations

import os
import time

from celeriac import Celery

app = Celery("secureapp")
app.conf.update(
    broker_lease_seconds=float(os.environ.get("CELERIAC_TEST_LEASE", "6")),
    worker_heartbeat_interval=float(os.environ.get("CELERIAC_TEST_HEARTBEAT", "1")),
    worker_shutdown_timeout=5,
    task_message_signing_key=os.environ.get("CELERIAC_TEST_SIGNING_KEY") or None,
    task_redact_args=[n for n in os.environ.get("CELERIAC_TEST_REDACT", "").split(",") if n] or None,
    result_extended=True,
)


def mark(text: str) -> None:
    directory = os.environ.get("CELERIAC_TEST_DIR")
    if directory:
        with open(os.path.join(directory, "ran"), "a") as f:
            f.write(f"{text}\n")


@app.task
def login(user, password, options=None):
    mark(f"login {user}")
    return user


@app.task
def hold(seconds, password):
    """Runs (or waits, prefetched) long enough to be seen by inspect active/reserved."""
    mark("hold")
    time.sleep(seconds)
    return "held"


@app.task(bind=True, max_retries=0)
def charge(self, card, token=None):
    mark("charge")
    raise self.retry(countdown=0)
