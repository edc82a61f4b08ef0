#!/usr/bin/env python
"""What the per-task broker path costs the client, in CPU, for two source trees, on one server.

    .venv/bin/python benchmarks/path_cost.py --before /tmp/old/src [--rounds 5] [--tasks 20000]
    .venv/bin/python benchmarks/path_cost.py --callgrind --before /tmp/old/src   # instructions

Each round runs the current tree and the ``--before`` tree in fresh processes, one after the
other, on the same redis-server: 20,000 single enqueues, then a drain the way a worker's
consumer and flusher do it (fetch 10, finish 10 with results and an event batch). It reports the
client's CPU time per task (``time.process_time``, which other processes on the machine disturb
far less than wall-clock rates), or with ``--callgrind`` the instructions the client executed
(start-up included, the same in both; enqueued in batches, since a single enqueue polls for
its reply for a time, not a count). Used to check that cluster support costs a one-server
user nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BODY = b"x" * 300
RESULT = b"r" * 100


def inner(url: str, n: int, batch: bool) -> None:
    from celeriac import backends, brokers

    broker, backend = brokers.from_url(url), backends.from_url(url)
    broker.fetch(["pathcost"], "bench/1", 1, timeout=0)
    t0 = time.process_time()
    if batch:  # no polling for replies: the instruction count does not depend on timing
        for start in range(0, n, 100):
            broker.enqueue_many([("pathcost", BODY, 0, 0.0, "")] * min(100, n - start))
    else:
        for _ in range(n):
            broker.enqueue("pathcost", BODY)
    t1 = time.process_time()
    done = 0
    while done < n:
        got = broker.fetch(["pathcost"], "bench/1", 10, timeout=0.1)
        broker.finish(got, backend=backend, records=[(d.tag, RESULT, True) for d in got],
                      events=("events", b"e" * 200, 10_000))
        done += len(got)
    t2 = time.process_time()
    print(json.dumps({"enqueue_us": (t1 - t0) / n * 1e6, "drain_us": (t2 - t1) / n * 1e6}))


def run(src: Path, url: str, n: int, callgrind: bool) -> dict[str, float]:
    import redis

    redis.Redis.from_url(url).flushall()
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--inner", url, "--tasks", str(n), *(["--batch"] if callgrind else [])]
    if callgrind:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "cg.out"
            proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
                                  env=env, capture_output=True, text=True, timeout=1800, check=True)
            total = next(int(line.split()[-1].replace(",", "")) for line in out.read_text().splitlines()
                         if line.startswith("summary:") or line.startswith("totals:"))
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            figures["instructions_per_task"] = total / n
            return dict(figures)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--inner", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--batch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.tasks, args.batch)
        return
    if args.before is None:
        parser.error("--before SRC is required")
    sys.path.insert(0, str(ROOT / "tests"))
    from redis_server import start_redis

    server = start_redis()
    rows: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        for r in range(1 if args.callgrind else args.rounds):
            for label, src in (("after", ROOT / "src"), ("before", args.before)):
                rows[label].append(run(src, server.url, args.tasks, args.callgrind))
                print(f"round {r + 1} {label}: {rows[label][-1]}", flush=True)
    finally:
        server.stop()
    for key in rows["after"][0]:
        before = statistics.median(row[key] for row in rows["before"])
        after = statistics.median(row[key] for row in rows["after"])
        print(f"{key:24} before {before:12.1f}   after {after:12.1f}   after/before {after / before:.3f}")


if __name__ == "__main__":
    main()
