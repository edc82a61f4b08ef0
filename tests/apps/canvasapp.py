"""Tasks the canvas integration tests run (chains, groups, chords, callbacks) in real workers.

The broker comes from CELERIAC_BROKER_URL; side effects the tests count are lines appended to
files in CELERIAC_TEST_DIR (the chord bodies' ledger, errback calls), which survive the process.
"""

from __future__ import annotations

import os
import time

from celeriac import Celery

app = Celery("canvasapp")
app.conf.update(
    broker_lease_seconds=float(os.environ.get("CELERIAC_TEST_LEASE", "6")),
    worker_heartbeat_interval=float(os.environ.get("CELERIAC_TEST_HEARTBEAT", "1")),
    worker_shutdown_timeout=5.0,
)


def mark(name: str, text: str) -> None:
    directory = os.environ.get("CELERIAC_TEST_DIR")
    if directory:
        with open(os.path.join(directory, name), "a") as f:
            f.write(f"{text}\n")


@app.task
def add(x, y):
    return x + y


@app.task
def sub(x, y):
    return x - y


@app.task
def mul(x, y):
    return x * y


@app.task
def tsum(values):
    return sum(values)


@app.task
def fail(*args):
    raise ValueError(f"failed on purpose with {args!r}")


@app.task
def slow(x, seconds):
    """A header task that takes a while, with a mark when it starts (the kill test waits for it)."""
    mark("slow-started", f"{x} {os.getpid()}")
    time.sleep(seconds)
    return x


@app.task
def ledger(values, tag):
    """A chord body that leaves one line per run: the tests count exactly-once on it."""
    mark("ledger", f"{tag} {sorted(values)}")
    return sorted(values)


@app.task
def on_error(request, exc, traceback):
    """A new-style errback: called in the worker with the failed task's request and error."""
    mark("errors", f"{request.id} {type(exc).__name__} {exc}")


@app.task
def on_error_id(task_id):
    """An old-style errback: sent with the failed task's id."""
    mark("errors-id", task_id)


@app.task
def collect(value, tag):
    mark("collect", f"{tag} {value}")
    return value


@app.task(bind=True)
def replaced(self, x):
    """Replaced by a chain: the caller's result (and what follows it) is the chain's."""
    return self.replace(add.s(x, 1) | mul.s(10))


@app.task
def spawn(n):
    """Sends ``n`` tasks while it runs: they are its AsyncResult.children."""
    return [add.delay(i, i).id for i in range(n)]


@app.task(bind=True)
def grow(self, x, extra, pause=0.0):
    """A chord header task that adds ``extra`` members to its chord (Task.add_to_chord), each
    returning ``x * 100 + i`` a second later, then takes ``pause`` seconds (a test kills it then;
    the redelivered run does not wait again)."""
    for i in range(extra):
        self.add_to_chord(slow.si(x * 100 + i, 1.0))
    mark("grow-added", f"{x} {os.getpid()}")
    if not self.request.delivery_info.get("redelivered"):
        time.sleep(pause)
    return x


@app.task(bind=True)
def grow_lazily(self, x):
    """add_to_chord(lazy=True) hands the signature back unsent: this task sends it itself."""
    sig = self.add_to_chord(add.si(x, 1000), lazy=True)
    mark("grow-lazy", type(sig).__name__)
    sig.delay()
    return x


@app.task(bind=True)
def grow_outside(self):
    """add_to_chord outside a chord header is a ValueError, as in Celery."""
    try:
        self.add_to_chord(add.si(1, 1))
    except ValueError as exc:
        return str(exc)
    return "no error"
