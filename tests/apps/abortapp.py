"""An abortable task for tests/integration/test_contrib_abortable.py (broker from CELERIAC_BROKER_URL)."""

from __future__ import annotations

import time

from celeriac import Celery
from celeriac.contrib.abortable import AbortableTask

app = Celery("abortapp")


@app.task(bind=True, base=AbortableTask)
def crawl(self, pages, pause):
    """Checks for an abort between pages; returns how many pages it did."""
    for done in range(pages):
        if self.is_aborted():
            return f"aborted after {done}"
        time.sleep(pause)
    return f"all {pages}"
