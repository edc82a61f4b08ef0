"""p50/p99 of task-history queries (what ``/api/tasks`` and the Tasks page ask) at 100k and 1M rows.

    .venv/bin/python benchmarks/history_query.py                 # 100,000 and 1,000,000 rows
    .venv/bin/python benchmarks/history_query.py --rows 100000 --runs 50 --keep /tmp/h.db

Builds a history file of realistic shape (30 task names, 4 queues, 8 workers, a mix of states,
argument reprs with a unique word each) through ``History.save``, the indexer's own write path
(its rate is printed too), then times each query ``--runs`` times on a warm file. Then it starts
``celeriac flower`` on that file (a subprocess, as users run it) and times the same questions
over HTTP: ``/api/tasks?limit=100``, a filtered and a searched page, ``/api/task/info/<id>`` and
the Tasks page. The retention pass (``prune``) is timed once at the end, dropping 1 % of the rows.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from celeriac.monitor.history import History, TaskQuery
from celeriac.monitor.state import TaskRecord

NAMES = [f"proj.tasks.task_{n:02d}" for n in range(30)]
QUEUES = ["high_priority", "normal_priority", "low_priority", "celery"]
WORKERS = [f"w{n}@host" for n in range(8)]
STATES = ["SUCCESS"] * 90 + ["FAILURE"] * 6 + ["RETRY"] * 2 + ["REVOKED", "STARTED"]


def build(path: str, rows: int, chunk: int = 5000) -> float:
    history = History(path, max_tasks=None)
    rnd = random.Random(7)
    t0 = 1_700_000_000.0
    started = time.perf_counter()
    for start in range(0, rows, chunk):
        batch = []
        for n in range(start, min(start + chunk, rows)):
            received = t0 + n * 0.01
            batch.append(TaskRecord(
                uuid=f"{rnd.getrandbits(128):032x}", name=rnd.choice(NAMES), state=rnd.choice(STATES),
                queue=rnd.choice(QUEUES), worker=rnd.choice(WORKERS), received=received, started=received + 0.002,
                succeeded=received + 0.05, timestamp=received + 0.05, runtime=0.048,
                args=f"({n}, 'user{n % 5000}@example.com', 'word{n}')", kwargs="{'retries': 3}", result="None"))
        history.save(batch, f"{start}-0")
    elapsed = time.perf_counter() - started
    history.close()
    return rows / elapsed


def queries(history: History) -> dict[str, TaskQuery]:
    some = history.query(TaskQuery(limit=1, offset=history.count() // 2))[0]
    mid = some.received or 0.0
    return {
        "newest 100 (/api/tasks?limit=100)": TaskQuery(limit=100),
        "state=FAILURE, newest 100": TaskQuery(state="FAILURE"),
        "state=REVOKED (1 %), newest 100": TaskQuery(state="REVOKED"),
        "taskname, newest 100": TaskQuery(name=NAMES[3]),
        "workername + state, newest 100": TaskQuery(worker=WORKERS[2], state="FAILURE"),
        "queue, newest 100": TaskQuery(queue=QUEUES[0]),
        "received in a 1 min window": TaskQuery(received_from=mid, received_to=mid + 60, sort="received"),
        "sort_by=name, 100": TaskQuery(sort="name", descending=False),
        "sort_by=-started, 100": TaskQuery(sort="started"),
        "sort_by=-timestamp (last event), 100": TaskQuery(sort="timestamp"),
        "page 100 (offset 9,900)": TaskQuery(offset=9900),
        "search: task id prefix": TaskQuery(search=some.uuid[:12]),
        "search: argument text (one task)": TaskQuery(search=str(some.args).split("'")[-2]),
        "search: argument text (common)": TaskQuery(search="example.com"),
        "search: common text + state, sort_by=name": TaskQuery(search="user42@", state="FAILURE", sort="name"),
        "get one task by id": TaskQuery(),  # timed through History.get below
    }


def measure(path: str, runs: int) -> list[tuple[str, float, float]]:
    history = History(path, max_tasks=None)
    some = history.query(TaskQuery(limit=1, offset=history.count() // 3))[0].uuid
    out = []
    for label, q in queries(history).items():
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            if label.startswith("get one"):
                history.get(some)
            else:
                history.query(q)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        out.append((label, statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]))
    history.close()
    return out


def measure_http(path: str, rows: int, runs: int) -> list[tuple[str, float, float]]:
    import httpx

    history = History(path, max_tasks=None)
    some = history.query(TaskQuery(limit=1, offset=history.count() // 2))[0]
    history.close()
    with tempfile.TemporaryDirectory(prefix="celeriac-history-broker-") as directory:
        port = _free_port()
        env = {**os.environ, "CELERIAC_BROKER_URL": f"sqlite:///{directory}/broker.db",
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
        proc = subprocess.Popen([sys.executable, "-m", "celeriac", "flower", f"--port={port}", f"--db={path}",
                                 f"--max_tasks={rows + 1}"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if client.get("/healthcheck").text == "OK":
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("the dashboard did not start")
                    time.sleep(0.1)
                word = str(some.args).split("'")[-2]
                asks = {
                    "GET /api/tasks?limit=100": "/api/tasks?limit=100",
                    "GET /api/tasks?limit=100&state=FAILURE": "/api/tasks?limit=100&state=FAILURE",
                    "GET /api/tasks?limit=100&search=<word>": f"/api/tasks?limit=100&search={word}",
                    "GET /api/task/info/<id>": f"/api/task/info/{some.uuid}",
                    "GET /tasks (the Tasks page, 50 rows)": "/tasks",
                }
                out = []
                for label, url in asks.items():
                    samples = []
                    for _ in range(runs):
                        started = time.perf_counter()
                        reply = client.get(url)
                        samples.append((time.perf_counter() - started) * 1000)
                        if reply.status_code != 200:
                            raise SystemExit(f"{url}: {reply.status_code} {reply.text[:200]}")
                    samples.sort()
                    out.append((label, statistics.median(samples),
                                samples[min(len(samples) - 1, int(len(samples) * 0.99))]))
                return out
        finally:
            proc.terminate()
            proc.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="history size (repeatable)")
    parser.add_argument("--runs", type=int, default=100, help="runs per query")
    parser.add_argument("--keep", help="build the file here and keep it")
    args = parser.parse_args()
    for rows in args.rows or [100_000, 1_000_000]:
        directory = tempfile.mkdtemp(prefix="celeriac-history-")
        path = args.keep or os.path.join(directory, "history.db")
        rate = build(path, rows)
        size = os.path.getsize(path) / 1e6
        print(f"\n{rows:,} tasks: written at {rate:,.0f} tasks/s through History.save, file {size:,.0f} MB")
        print(f"{'query':<40} {'p50 ms':>8} {'p99 ms':>8}")
        for label, p50, p99 in measure(path, args.runs):
            print(f"{label:<40} {p50:8.2f} {p99:8.2f}")
        print(f"{'over HTTP (celeriac flower)':<40} {'p50 ms':>8} {'p99 ms':>8}")
        for label, p50, p99 in measure_http(path, rows, args.runs):
            print(f"{label:<40} {p50:8.2f} {p99:8.2f}")
        history = History(path, max_tasks=rows - rows // 100)
        started = time.perf_counter()
        removed = history.prune()
        label = f"retention pass (drops {removed:,})"
        print(f"{label:<40} {(time.perf_counter() - started) * 1000:8.1f}")
        history.close()
        if not args.keep:
            for name in os.listdir(directory):
                os.unlink(os.path.join(directory, name))
            os.rmdir(directory)


if __name__ == "__main__":
    main()
