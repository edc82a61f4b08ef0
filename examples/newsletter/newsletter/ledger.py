"""One JSON line per event, appended by whichever process saw it (workers are separate processes)."""

import json
import os
import time


def record(event, **fields):
    path = os.environ.get("NEWSLETTER_LEDGER", "ledger.jsonl")
    line = json.dumps({"event": event, "pid": os.getpid(), "at": time.time(), **fields})
    with open(path, "a") as ledger:
        ledger.write(line + "\n")
