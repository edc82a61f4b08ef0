"""The celeriac side of the cut-over test: the same task name as celery_migrate.py; each run
appends one JSON line (task id, arguments, request fields) to the ledger in CELERIAC_TEST_DIR."""

from __future__ import annotations

import json
import os
from typing import Any

from celeriac import Celery

app = Celery("migrateapp")
app.conf.update(task_queues=["celery", "held", "high"])


@app.task(name="shop.record", bind=True)
def record(self: Any, *args: Any, **kwargs: Any) -> None:
    line = json.dumps({"id": self.request.id, "args": args, "kwargs": kwargs, "retries": self.request.retries,
                       "root_id": self.request.root_id, "parent_id": self.request.parent_id}, default=repr)
    with open(os.path.join(os.environ["CELERIAC_TEST_DIR"], "ledger"), "a") as f:
        f.write(line + "\n")
