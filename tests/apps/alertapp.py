"""coreapp's tasks with settings from CELERIAC_TEST_ALERTS (a JSON object): the alert tests give
the dashboard and the workers the same settings (alert channels, thresholds, redaction)."""

from __future__ import annotations

import json
import os

from coreapp import app

app.conf.update(json.loads(os.environ.get("CELERIAC_TEST_ALERTS", "{}")))


@app.task
def spawn(x, y):
    """Sends a child task (coreapp.add) and answers with its id: a task with a parent and a root."""
    from coreapp import add

    return add.delay(x, y).id
