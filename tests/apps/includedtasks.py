"""A task module coreapp does not import: only ``worker -I includedtasks`` registers it."""

from __future__ import annotations

from coreapp import app

from celeriac import Task


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


class LoggedReplace(Task):
    """Celery's on_replace hook, overridden as its docs show: do something, then super()."""

    def on_replace(self, sig):
        from coreapp import mark

        mark("on_replace", f"{self.request.id} {sig.task} {sig.options.get('task_id')}")
        return super().on_replace(sig)


@app.task(bind=True, base=LoggedReplace, name="includedtasks.replaced")
def replaced(self, x):
    from coreapp import add

    return self.replace(add.s(x, 1))
