#!/usr/bin/env python
"""The cost of the durability choice: enqueue and drain with and without ``wait_replicas=1``
(Redis ``WAIT 1`` after each enqueue, in the same write), against a master and one replica of
this script's own on loopback, in one run.

    .venv/bin/python benchmarks/durable_enqueue.py             # 5,000 single, 20,000 batch/drain
    .venv/bin/python benchmarks/durable_enqueue.py --quick     # a smoke run
    .venv/bin/python benchmarks/durable_enqueue.py --cluster   # on a 3-master + 3-replica cluster

Each phase runs the two settings back to back, so machine noise hits them alike; only the
ratios of one run mean anything (see README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench import QUEUE, WorkerProc, log, reset_redis, wait_for  # noqa: E402

WAIT = {"wait_replicas": 1, "wait_timeout": 2.0}
SETTINGS = (("no WAIT", False), ("wait_replicas=1", True))


def configure(app: Any, url: str, durable: bool) -> None:
    app.close()
    app.conf.broker_url = app.conf.result_backend = url
    app.conf.broker_transport_options = dict(WAIT) if durable else None
    app._reset_connections()


def single(app: Any, n: int) -> tuple[float, float]:
    """Rate of ``n`` sequential ``delay()`` calls, and the median call in microseconds."""
    import celeriac_tasks

    for _ in range(50):  # connections, scripts, the queue's first SADD
        celeriac_tasks.noop_ignore.delay()
    calls = []
    t0 = time.perf_counter()
    for _ in range(n):
        began = time.perf_counter()
        celeriac_tasks.noop_ignore.delay()
        calls.append(time.perf_counter() - began)
    return n / (time.perf_counter() - t0), statistics.median(calls) * 1e6


def batch(app: Any, n: int, size: int) -> float:
    """Rate of ``n`` calls sent as ``send_many`` batches of ``size``."""
    calls = [((), {})] * size
    app.send_many("bench.noop_ignore", [((), {})] * 10)  # connections, scripts, the queue's first SADD
    t0 = time.perf_counter()
    for _ in range(n // size):
        app.send_many("bench.noop_ignore", calls)
    return (n // size) * size / (time.perf_counter() - t0)


def drain(app: Any, url: str, n: int, durable: bool, logdir: Path) -> float:
    """Rate at which one worker (-c 2, the setting in its app too) drains ``n`` noops."""
    app.send_many("bench.noop_ignore", [((), {})] * n)
    env = {**os.environ, "BENCH_BROKER_URL": url, "BENCH_WAIT_REPLICAS": "1" if durable else "0",
           "PYTHONPATH": str(HERE)}
    cmd = [sys.executable, "-m", "celeriac", "-A", "celeriac_tasks", "worker", "-c", "2", "-l", "warning",
           "-n", f"durable-{int(durable)}@%h"]
    worker = WorkerProc(cmd, env, logdir / f"drain-{int(durable)}.log")

    def depth() -> tuple[int, int]:
        stats = app.broker.stats([QUEUE])[0]
        return int(stats.ready_total), int(stats.unacked)

    try:
        first = wait_for(lambda: depth()[0] < n, what="first task taken", interval=0.005, worker=worker)
        end = wait_for(lambda: depth() == (0, 0), what="queue drained", interval=0.02, worker=worker, state=depth)
        problems = worker.problems()
        if problems:
            raise RuntimeError("the worker logged errors:\n" + "\n".join(problems[:10]))
        return n / (end - first)
    finally:
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the cost of wait_replicas=1 (Redis WAIT) on loopback")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cluster", action="store_true",
                        help="a Redis Cluster of three masters with a replica each (WAIT per master written)")
    args = parser.parse_args(argv)
    n_single, n_many = (1_000, 4_000) if args.quick else (5_000, 20_000)

    import celeriac_tasks
    import redis

    from redis_server import _info, _wait_replicating, start_cluster_setup, start_redis

    cluster = master = replica = None
    if args.cluster:
        cluster = start_cluster_setup()
        url = cluster.url
        raws = [redis.Redis(port=p) for p in cluster.ports() if _info(p, "replication").get("role") == "master"]
    else:
        master = start_redis("--maxmemory-policy", "noeviction")
        replica = start_redis("--replicaof", "127.0.0.1", str(master.port))
        url = master.url
        raws = [redis.Redis(port=master.port)]
    logdir = Path(tempfile.mkdtemp(prefix="celeriac-durable-"))
    rows: list[tuple[str, str, float, float]] = []
    try:
        if replica is not None:
            _wait_replicating(replica)
        app = celeriac_tasks.app
        figures: dict[tuple[str, bool], float] = {}
        for phase in ("single", "single_us", "batch_20000", "batch_100", "drain"):
            for _label, durable in SETTINGS:
                if phase == "single_us":
                    continue
                for raw in raws:
                    reset_redis(raw)
                configure(app, url, durable)
                if phase == "single":
                    figures["single", durable], figures["single_us", durable] = single(app, n_single)
                elif phase == "batch_20000":
                    figures[phase, durable] = batch(app, n_many, n_many)
                elif phase == "batch_100":
                    figures[phase, durable] = batch(app, n_many, 100)
                else:
                    figures[phase, durable] = drain(app, url, n_many, durable, logdir)
                log(f"{phase} {'wait_replicas=1' if durable else 'no WAIT'}: {figures[phase, durable]:,.0f}")
        names = {"single": f"enqueue: {n_single:,} single delay() (/s)",
                 "single_us": "enqueue: one delay(), median (µs)",
                 "batch_20000": f"enqueue: send_many, one batch of {n_many:,} (/s)",
                 "batch_100": f"enqueue: send_many, batches of 100, {n_many:,} calls (/s)",
                 "drain": f"drain {n_many:,} noops, ignore_result, -c 2 (/s)"}
        for phase, name in names.items():
            off, on = figures[phase, False], figures[phase, True]
            rows.append((name, phase, off, on))
        app.close()
    finally:
        for raw in raws:
            raw.close()
        for server in (replica, master, cluster):
            if server is not None:
                server.stop()
    where = "a cluster of 3 masters + 3 replicas" if cluster else "master + 1 replica"
    print(f"\nredis-py {redis.__version__}; {where} on loopback; one run\n")
    print("| metric | no WAIT | wait_replicas=1 | with/without |")
    print("|---|---|---|---|")
    for name, _phase, off, on in rows:
        print(f"| {name} | {off:,.0f} | {on:,.0f} | {on / off:.2f}x |")
    print(f"\nworker logs: {logdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
