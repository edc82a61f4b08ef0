"""A task module coreapp does not import: only ``worker -I includedtasks`` registers it."""

from __future__ import annotations

from coreapp import app


@app.task(name="includedtasks.double")
def double(x):
    return 2 * x


@app.task(name="includedtasks.debugged")
def debugged(x):
    from celeriac.contrib import rdb

    rdb.set_trace()  # the test connects, looks at x, and continues
    return x + 1


@app.task(name="includedtasks.stop_worker")
def stop_worker():
    from celeriac.exceptions import WorkerShutdown

    raise WorkerShutdown(0)
