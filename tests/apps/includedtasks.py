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
