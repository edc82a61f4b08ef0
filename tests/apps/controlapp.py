"""coreapp plus the tasks the control-plane tests need (``-A controlapp``).

CELERIAC_TEST_RESULT_BACKEND, when set in a worker's environment, becomes its result_backend,
so a test can give a worker a URL with a password and check that no command shows it.
"""

from __future__ import annotations

import os
import time

from coreapp import *  # noqa: F403
from coreapp import app, mark

from celeriac import Reject

if os.environ.get("CELERIAC_TEST_RESULT_BACKEND"):
    app.conf.result_backend = os.environ["CELERIAC_TEST_RESULT_BACKEND"]


@app.task(acks_late=True)
def reject_until_allowed(tag):
    """Dead-letters itself until the test leaves an ``allow-<tag>`` file, then succeeds."""
    directory = os.environ.get("CELERIAC_TEST_DIR", "")
    if not os.path.exists(os.path.join(directory, f"allow-{tag}")):
        mark("rejected", tag)
        raise Reject(f"not allowed yet: {tag}", requeue=False)
    mark("allowed", tag)
    return tag


@app.task(bind=True)
def stamped(self, tag):
    """Records its stamps as the task sees them (Signature.stamp), then returns them."""
    mark("stamped", f"{tag} {sorted(self.request.stamped_headers)}")
    return {"tag": tag, "stamps": self.request.stamps}


@app.task
def held(tag, limit=60.0):
    """Keeps its worker busy until the test leaves a ``release-<tag>`` file (at most ``limit``
    seconds), so what is queued behind it waits for the test, not for a guess at its speed."""
    mark("started", f"{tag} {os.getpid()}")
    gate = os.path.join(os.environ.get("CELERIAC_TEST_DIR", ""), f"release-{tag}")
    deadline = time.monotonic() + limit
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return tag
