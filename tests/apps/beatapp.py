"""The app beat's integration tests run in real ``beat`` and ``worker -B`` processes.

The broker comes from CELERIAC_BROKER_URL. BEATAPP_SCENARIO picks the schedule:

- ``ticks``:    ``every-second``, a 1 s interval: enough ticks in a few seconds to count duplicates.
- ``catch-up``: two 5 s entries (room for a slow start on a loaded machine), ``missed='once'``
  and ``missed='skip'``, for kill-and-restart.
- ``runtime``:  nothing in code; the test adds entries at run time.

Every run appends ``<entry> <tick> <pid>`` to the file BEATAPP_RECORD names; ``<tick>`` is the
tick beat stamped on the message (``manual`` for run-now), so a test can tell each tick apart.
"""

from __future__ import annotations

import os

from celeriac import Celery

app = Celery("beatapp")

SCENARIOS = {
    "ticks": {
        "every-second": {"task": "beatapp.record", "schedule": 1.0, "args": ["every-second"]},
    },
    "catch-up": {
        "catch-up-once": {"task": "beatapp.record", "schedule": 5.0, "args": ["catch-up-once"], "missed": "once"},
        "catch-up-skip": {"task": "beatapp.record", "schedule": 5.0, "args": ["catch-up-skip"], "missed": "skip"},
    },
    "runtime": {},
}

app.conf.beat_schedule = SCENARIOS[os.environ.get("BEATAPP_SCENARIO", "ticks")]


@app.task(bind=True)
def record(self, entry: str) -> None:
    tick = self.request.headers.get("periodic_task_tick")
    path = os.environ.get("BEATAPP_RECORD")
    if path:
        with open(path, "a") as f:  # one short line per write: appends do not interleave
            f.write(f"{entry} {'manual' if tick is None else repr(float(tick))} {os.getpid()}\n")
