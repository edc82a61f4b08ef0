"""coreapp's tasks with settings from CELERIAC_TEST_ALERTS (a JSON object): the alert tests give
the dashboard and the workers the same settings (alert channels, thresholds, redaction)."""

from __future__ import annotations

import json
import os

from coreapp import app

app.conf.update(json.loads(os.environ.get("CELERIAC_TEST_ALERTS", "{}")))

__all__ = ["app"]
