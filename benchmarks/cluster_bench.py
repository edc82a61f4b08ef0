#!/usr/bin/env python
"""One redis-server vs a Redis Cluster of three masters, in one run, through celeriac's broker.

    .venv/bin/python benchmarks/cluster_bench.py            # 20,000 tasks a phase, 3 rounds
    .venv/bin/python benchmarks/cluster_bench.py --quick    # 3,000 tasks, 1 round

Three queues, whose hash tags land on the three masters, are filled and drained the way a
worker's consumer and flusher do it (fetch 10, then finish them with their results and one
event batch). Every phase runs on the single server and then on the cluster, round after round,
so machine noise hits both alike. Besides tasks/s it reads each server's CPU time (INFO cpu):
on one machine the cluster is not faster — the client pays one round trip per node — but the
server work per task is spread over the masters, which is what lets throughput grow with masters
when the servers are the limit. The cluster has no replicas here (they would only add
replication CPU to the same two cores). See README.md for the figures.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from celeriac import backends, brokers  # noqa: E402
from celeriac.brokers.base import Broker  # noqa: E402
from redis_server import ClusterSetup, RedisServer, _info, start_cluster_setup, start_redis  # noqa: E402

BODY = b"x" * 300
RESULT = b"r" * 100
FETCH = 10


def spread_queues(cluster: ClusterSetup) -> list[str]:
    found: dict[int, str] = {}
    for i in range(1000):
        found.setdefault(cluster.master_of(f"celeriac:q:bench{i}"), f"bench{i}")
        if len(found) == 3:
            return list(found.values())
    raise RuntimeError("no three queue names on three masters")


def server_cpu(ports: list[int]) -> dict[int, float]:
    out = {}
    for port in ports:
        info = _info(port, "cpu")
        out[port] = float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0))
    return out


def measure(ports: list[int], n: int, work: Callable[[], None]) -> dict[str, float]:
    cpu0, wall0, proc0 = server_cpu(ports), time.perf_counter(), time.process_time()
    work()
    wall, proc = time.perf_counter() - wall0, time.process_time() - proc0
    cpu1 = server_cpu(ports)
    per_node = [(cpu1[p] - cpu0[p]) / n * 1e6 for p in ports]
    return {"rate": n / wall, "client_us": proc / n * 1e6, "server_us": sum(per_node),
            "busiest_node_us": max(per_node)}


def enqueue_one(broker: Broker, queues: list[str], n: int) -> None:
    for i in range(n):
        broker.enqueue(queues[i % 3], BODY)


def enqueue_batches(broker: Broker, queues: list[str], n: int) -> None:
    for start in range(0, n, 100):
        broker.enqueue_many([(queues[i % 3], BODY, 0, 0.0, "") for i in range(start, min(n, start + 100))])


def drain(broker: Broker, backend: object, queues: list[str], n: int) -> None:
    done, deadline = 0, time.monotonic() + 300
    while done < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"drained {done} of {n} in 300 s")
        got = broker.fetch(queues, "bench/1", FETCH, timeout=0.1)
        records = [(f"{d.queue}-{d.tag}", RESULT, True) for d in got]
        broker.finish(got, backend=backend, records=records, events=("events", b"e" * 200, 10_000))
        done += len(got)


def worker_drain(url: str, queues: list[str], n: int) -> dict[str, float]:
    """Real workers: ``celeriac worker -c 2`` on the three queues drains n ``bench.noop`` tasks
    (results stored, events on), timed from its first lease to the last ack."""
    os.environ["BENCH_BROKER_URL"] = url
    sys.path.insert(0, str(HERE))
    import celeriac_tasks

    app = celeriac_tasks.app
    app.conf.broker_url = app.conf.result_backend = url
    app._reset_connections()
    for i, queue in enumerate(queues):
        app.send_many("bench.noop", [((), {})] * (n // 3 + (i < n % 3)), queue=queue)
    broker = app.broker
    env = {**os.environ, "BENCH_BROKER_URL": url,
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "celeriac_tasks", "worker", "-c", "2",
                                   "-l", "warning", "-Q", ",".join(queues)], env=env, cwd=HERE, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            first = end = None
            left_at_first = n
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                left = sum(sum(s.ready) + s.unacked for s in broker.stats(queues))
                now = time.perf_counter()
                if first is None and left < n:
                    first, left_at_first = now, left
                if left == 0:
                    end = now
                    break
                if worker.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the worker exited: {log.read()[-2000:].decode(errors='replace')}")
                time.sleep(0.02)
            if first is None or end is None:
                raise RuntimeError("the worker did not drain the queues in 300 s")
        finally:
            os.killpg(worker.pid, signal.SIGTERM)  # the worker's own session: it and its pool
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
    app.close()
    return {"rate": left_at_first / max(end - first, 1e-9)}


def one_round(label: str, url: str, ports: list[int], queues: list[str], n: int,
              flush: Callable[[], None]) -> dict[str, dict[str, float]]:
    broker = brokers.from_url(url)
    backend = backends.from_url(url)
    out = {}
    try:
        flush()
        broker.fetch(queues, "bench/1", 1, timeout=0)  # groups and slot map, outside the timing
        out["enqueue (one delay() each)"] = measure(ports, n, lambda: enqueue_one(broker, queues, n))
        out["drain (fetch 10, finish 10 with results)"] = measure(ports, n, lambda: drain(broker, backend, queues, n))
        flush()
        out["enqueue (batches of 100)"] = measure(ports, n, lambda: enqueue_batches(broker, queues, n))
        drain(broker, backend, queues, n)
        flush()
        out["drain by a worker (-c 2, results, events)"] = worker_drain(url, queues, n)
    finally:
        broker.close()
        backend.close()  # type: ignore[attr-defined]
    print(f"  {label}: " + ", ".join(f"{k.split(' ')[0]} {v['rate']:,.0f}/s" for k, v in out.items()), flush=True)
    return out


def flush_server(server: RedisServer) -> Callable[[], None]:
    def flush() -> None:
        import redis

        client = redis.Redis(port=server.port)
        client.flushall()
        client.close()
    return flush


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, rounds = (3_000, 1) if args.quick else (20_000, 3)
    single = start_redis()
    cluster = start_cluster_setup(replicas=0)
    try:
        queues = spread_queues(cluster)
        masters = [cluster.master_of(f"celeriac:q:{q}") for q in queues]
        runs: dict[str, list[dict[str, dict[str, float]]]] = {"single": [], "cluster": []}
        for r in range(rounds):
            print(f"round {r + 1} of {rounds}, {n} tasks a phase", flush=True)
            runs["single"].append(one_round("one server", single.url, [single.port], queues, n, flush_server(single)))
            runs["cluster"].append(one_round("3-master cluster", cluster.url, masters, queues, n, cluster.flush))
        report(runs, n)
    finally:
        cluster.stop()
        single.stop()


def report(runs: dict[str, list[dict[str, dict[str, float]]]], n: int) -> None:
    def med(mode: str, phase: str, key: str) -> float:
        return statistics.median(r[phase][key] for r in runs[mode])

    print(f"\nmedians of {len(runs['single'])} round(s), {n} tasks a phase, one client process, "
          "3 queues (one per master on the cluster)\n")
    print("| phase | | one server | 3-master cluster | cluster / one |")
    print("|---|---|---:|---:|---:|")
    for phase in runs["single"][0]:
        for key, label, unit in (("rate", "tasks/s", ""), ("client_us", "client CPU per task", " µs"),
                                 ("server_us", "server CPU per task (all nodes)", " µs"),
                                 ("busiest_node_us", "server CPU per task, busiest node", " µs")):
            if key not in runs["single"][0][phase]:
                continue
            one, clu = med("single", phase, key), med("cluster", phase, key)
            fmt = "{:,.0f}" if key == "rate" else "{:.1f}"
            print(f"| {phase} | {label} | {fmt.format(one)}{unit} | {fmt.format(clu)}{unit} | {clu / one:.2f}x |")
    print("\nserver-bound ceiling (1 / busiest node's CPU per task), one server vs masters of the cluster:")
    for phase in runs["single"][0]:
        if "busiest_node_us" not in runs["single"][0][phase]:
            continue
        one = 1e6 / med("single", phase, "busiest_node_us")
        # Each task's server work, spread over M masters by its queue (and its result's) slot.
        total = med("cluster", phase, "server_us")
        line = ", ".join(f"{m} masters {m * 1e6 / total:,.0f}/s" for m in (3, 6, 9))
        print(f"  {phase}: one server {one:,.0f}/s; {line}")


if __name__ == "__main__":
    main()
