#!/usr/bin/env python
"""I/O-bound tasks: celeriac ``-P asyncio`` vs Celery 5 prefork, on one fresh redis-server.

    .venv/bin/python benchmarks/async_io.py                  # 1,000 tasks each awaiting 100 ms
    .venv/bin/python benchmarks/async_io.py --tasks 200      # smaller
    .venv/bin/python benchmarks/async_io.py --celery-concurrency 16   # give Celery more processes

Both sides get the same pool processes (-c, default 2 = this machine's cores). celeriac's each
run up to worker_async_concurrency (100) tasks at once in an event loop; Celery's prefork runs
one task per process (its tasks run the coroutine with asyncio.run, as Celery code does today).
The N tasks are enqueued with no worker running; then one worker starts, and the time from the
first task leaving the queue until all N results are stored gives tasks/s. Both sides run back
to back in one run: only the ratio means anything.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bench import (
    STARTED,
    BenchError,
    CeleriacRedis,
    CeleryRedis,
    Side,
    log,
    require_celery,
    require_psutil,
    wait_for,
)

TASK = "bench.io_sleep"


class AsyncCeleriac(CeleriacRedis):
    label = "celeriac -P asyncio (Redis)"
    processes = 2

    def worker_cmd(self, name: str) -> list[str]:
        return [sys.executable, "-m", "celeriac", "-A", self.module, "worker", "-P", "asyncio",
                "-c", str(self.processes), "-l", "warning", "-n", f"{name}@%h"]


class PreforkCelery(CeleryRedis):
    label = "Celery 5 prefork (Redis)"
    processes = 2

    def worker_cmd(self, name: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", self.module, "worker", "-P", "prefork",
                "-c", str(self.processes), "-l", "warning", "-n", f"{name}@%h"]


def measure(side: Side, n: int, seconds: float) -> float:
    """Enqueue n tasks, start a worker, return seconds from first taken to all results stored."""
    side.flush()
    ids = _send(side, n, seconds)
    worker = side.start_worker("async-io")
    try:
        t_first = wait_for(lambda: side.depth()[0] < n, what=f"{side.label}: first task taken",
                           interval=0.005, worker=worker, state=side.depth)
        t_end = wait_for(lambda: side.results_ready(ids) >= n, what=f"{side.label}: all results stored",
                         interval=0.02, worker=worker, state=lambda: side.results_ready(ids))
        counts = side.states(ids)
        if counts.get("SUCCESS", 0) != n:
            raise BenchError(f"{side.label}: result states {dict(counts)} (expected {n} SUCCESS)")
        return t_end - t_first
    finally:
        worker.stop()


def _send(side: Side, n: int, seconds: float) -> list[str]:
    task = side.m.app.tasks[TASK]  # type: ignore[attr-defined]
    return [task.delay(seconds).id for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000, help="how many tasks (default 1000)")
    parser.add_argument("--sleep", type=float, default=0.1, help="seconds each task awaits (default 0.1)")
    parser.add_argument("-c", "--concurrency", type=int, default=2, help="pool processes of both (default 2)")
    parser.add_argument("--celery-concurrency", type=int, help="Celery's processes, if not the same")
    args = parser.parse_args(argv)
    require_celery()
    require_psutil()
    from redis_server import start_redis

    AsyncCeleriac.processes = args.concurrency
    PreforkCelery.processes = args.celery_concurrency or args.concurrency
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="celeriac-async-bench-"))
    server = None
    sides: list[Side] = []
    figures: dict[str, float] = {}
    try:
        server = start_redis()
        sides = [AsyncCeleriac(server.url, server.url, tmp), PreforkCelery(server.url, server.url, tmp)]
        for side in sides:
            secs = measure(side, args.tasks, args.sleep)
            figures[side.label] = args.tasks / secs
            log(f"{side.label}: {args.tasks} x {args.sleep * 1000:g} ms in {secs:.2f}s "
                f"= {args.tasks / secs:,.1f} tasks/s")
    finally:
        for worker in list(STARTED):
            worker.stop(timeout=5)
        for side in sides:
            with contextlib.suppress(Exception):
                side.close()
        if server is not None:
            server.stop()
    celeriac_rate, celery_rate = figures[sides[0].label], figures[sides[1].label]
    print(f"\n{args.tasks} tasks each awaiting {args.sleep * 1000:g} ms, one run, same redis-server:")
    print(f"| {'side':<40} | {'processes':>9} | {'tasks/s':>9} | {'wall':>7} |")
    for side, procs in ((sides[0], AsyncCeleriac.processes), (sides[1], PreforkCelery.processes)):
        rate = figures[side.label]
        print(f"| {side.label:<40} | {procs:>9} | {rate:>9,.1f} | {args.tasks / rate:>6.2f}s |")
    print(f"ratio celeriac / Celery: {celeriac_rate / celery_rate:.1f}x")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
