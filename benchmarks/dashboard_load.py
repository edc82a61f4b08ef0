"""The dashboard under load: its CPU and memory while 2,000 tasks/s flow, how far behind the
history falls, and the drain rate of a worker with a dashboard attached against none; with
``--flower``, Flower 2 beside it on Celery at a rate Celery's worker sustains here, and
celeriac's dashboard at that same rate; with ``--flower-events``, Flower fed the events a Celery
cluster at that rate sends (from sender processes using Celery's own event dispatcher: no Celery
worker runs 2,000 tasks/s on this VM), then celeriac's dashboard at the rate really sent.

    .venv/bin/python benchmarks/dashboard_load.py                 # about 2 minutes
    .venv/bin/python benchmarks/dashboard_load.py --rate 2000 --seconds 30 --drain 20000
    .venv/bin/python benchmarks/dashboard_load.py --flower-events 2000   # and Flower beside it, same run

Runs on a fresh redis-server of its own (tests/redis_server.py, a free loopback port), a real
worker (``celeriac -A celeriac_tasks worker -c 2``) and ``celeriac flower`` as users start them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from redis_server import free_port, start_redis  # noqa: E402


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "BENCH_BROKER_URL": url, "CELERIAC_BROKER_URL": url,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")])}


def start(cmd: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "celeriac_tasks", *cmd], env=env_for(url),
                                cwd=HERE, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait(pred: object, what: str, timeout: float = 120.0, interval: float = 0.02) -> float:
    started = time.perf_counter()
    while not pred():  # type: ignore[operator]
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)
    return time.perf_counter() - started


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    proc = start(["worker", "-c", "2", "-l", "info", "-n", "bench@%h"], url, log)
    wait(lambda: b" ready." in log.read_bytes() or proc.poll() is not None, "the worker", 60, 0.05)
    if proc.poll() is not None:
        raise SystemExit(f"the worker exited: see {log}")
    return proc


def start_dashboard(url: str, db: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    port = free_port()
    proc = start(["flower", f"--port={port}", f"--db={db}", "--max_tasks=1000000"], url, log)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).text == "OK"
        except httpx.HTTPError:
            return proc.poll() is not None

    wait(up, "the dashboard", 60, 0.1)
    if proc.poll() is not None:
        raise SystemExit(f"the dashboard exited: see {log}")
    return proc, port


def succeeded_in(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM tasks WHERE state = 'SUCCESS'").fetchone()[0])


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


def bench_app(url: str) -> Any:
    """The benchmark tasks' app on our own server (never the module's default address)."""
    from celeriac_tasks import app

    if app.conf.broker_url != url:
        app.conf.broker_url = url
        app.conf.result_backend = url
        app._reset_connections()
    return app


def drain(url: str, n: int, work: Path, with_dashboard: bool, tag: str) -> tuple[float, float | None]:
    """Seconds to drain ``n`` queued noop tasks, and how long after that the history held them all."""
    app = bench_app(url)
    flush(url)
    for start_at in range(0, n, 5000):
        app.send_many("bench.noop", [((), {})] * min(5000, n - start_at))
    db = work / f"drain-{tag}.db"
    dashboard = start_dashboard(url, db, work / f"dashboard-{tag}.log")[0] if with_dashboard else None
    try:
        worker = start_worker(url, work / f"worker-{tag}.log")
        try:
            def empty() -> bool:
                stats = app.control.queues(["celery"])[0]
                return stats.ready_total == 0 and stats.unacked == 0

            took = wait(empty, "the drain", 300, 0.01)
        finally:
            stop(worker)
        lag = wait(lambda: succeeded_in(db) >= n, "the history", 120, 0.05) if dashboard else None
        return took, lag
    finally:
        if dashboard is not None:
            stop(dashboard)


def celery_flow(url: str, rate: int, seconds: float, work: Path) -> dict[str, float]:
    """Flower attached to a Celery worker sending events (``-E``) at ``rate`` tasks/s."""
    import psutil

    flush(url)
    env = env_for(url)
    port = free_port()
    with open(work / "celery-worker.log", "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "-E", "-c", "2",
                                   "-l", "info", "-n", "celery@%h"], env=env, cwd=HERE, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    with open(work / "flower.log", "ab") as out:
        flower = subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_tasks", "flower", f"--port={port}",
                                   "--address=127.0.0.1"], env=env, cwd=HERE, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        wait(lambda: b"ready." in (work / "celery-worker.log").read_bytes(), "the Celery worker", 60, 0.1)
        time.sleep(3)  # Flower connects and asks the worker for its events
        from celery_tasks import app, noop

        app.conf.broker_url = url
        return _sample(psutil.Process(flower.pid), lambda n: [noop.apply_async() for _ in range(n)], rate, seconds)
    finally:
        stop(worker)
        stop(flower)


def _celery_events(url: str, rate: float, seconds: float, index: int, sent: Any) -> None:
    """One sender process: what a Celery worker (-E) running ``rate`` noop tasks/s publishes
    (task-received, task-started, task-succeeded per task, a heartbeat every 2 s), through
    Celery's own event dispatcher."""
    import uuid

    from celery import Celery

    app = Celery("events_sender", broker=url)
    hostname = f"celery{index}@bench"
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname=hostname)
        dispatcher.send("worker-online", freq=2.0, sw_ident="py-celery", sw_ver="5.7.0", sw_sys="Linux")
        tick = 0.05
        per_tick = max(1, round(rate * tick))
        stop_at = time.perf_counter() + seconds
        next_tick, next_beat, processed = time.perf_counter(), 0.0, 0
        while time.perf_counter() < stop_at:
            for _ in range(per_tick):
                task_id = str(uuid.uuid4())
                dispatcher.send("task-received", uuid=task_id, name="bench.noop", args="()", kwargs="{}",
                                root_id=task_id, parent_id=None, retries=0, eta=None, expires=None)
                dispatcher.send("task-started", uuid=task_id)
                dispatcher.send("task-succeeded", uuid=task_id, result="None", runtime=0.0004)
            processed += per_tick
            with sent.get_lock():
                sent.value += per_tick
            if time.perf_counter() >= next_beat:
                dispatcher.send("worker-heartbeat", freq=2.0, active=0, processed=processed, loadavg=[0, 0, 0])
                next_beat = time.perf_counter() + 2.0
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        dispatcher.send("worker-offline")


def flower_events_flow(url: str, rate: int, seconds: float, work: Path, senders: int = 4) -> dict[str, float]:
    """Flower fed the events a Celery cluster running ``rate`` tasks/s sends, from ``senders``
    processes (a Celery worker on this 2-CPU VM runs far fewer than 2,000 tasks/s: what Flower
    is asked to do is follow the events, so the events are what is sent)."""
    import multiprocessing

    import psutil

    flush(url)
    port = free_port()
    with open(work / "flower-events.log", "ab") as out:
        flower = subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_tasks", "flower", f"--port={port}",
                                   "--address=127.0.0.1"], env={**env_for(url), "FLOWER_UNAUTHENTICATED_API": "true"},
                                  cwd=HERE, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ctx = multiprocessing.get_context("spawn")
    sent = ctx.Value("q", 0)
    procs = [ctx.Process(target=_celery_events, args=(url, rate / senders, seconds, i, sent)) for i in range(senders)]
    try:
        import httpx

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).status_code < 500
            except httpx.HTTPError:
                return flower.poll() is not None

        wait(up, "Flower", 60, 0.1)
        time.sleep(2)
        for proc in procs:
            proc.start()
        result = _sample(psutil.Process(flower.pid), lambda n: None, rate, seconds)
        for proc in procs:
            proc.join(60)
        result["sent"] = sent.value
        result["rate"] = sent.value / seconds
        # How many tasks Flower holds once it stops changing (it keeps max_tasks, 100,000 by default),
        # and how long after the last event that took.
        ended = time.perf_counter()
        held, last = -1, -2
        while held != last and time.perf_counter() - ended < 120:
            last = held
            time.sleep(2.0)
            tasks = httpx.get(f"http://127.0.0.1:{port}/api/tasks", params={"state": "SUCCESS"}, timeout=120).json()
            held = len(tasks)
        result["held"] = held
        result["settled"] = time.perf_counter() - ended - 2.0
        result["cpu_seconds"] = sum(psutil.Process(flower.pid).cpu_times()[:2]) - result["cpu_start"]
        result["rss_settled"] = psutil.Process(flower.pid).memory_info().rss / 1e6
        return result
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        stop(flower)


def _sample(proc: Any, send: Any, rate: int, seconds: float) -> dict[str, float]:
    """Send ``rate`` tasks/s for ``seconds`` through ``send(n)`` while sampling ``proc`` each second."""
    cpu: list[float] = []
    rss: list[float] = []
    proc.cpu_percent(None)
    cpu_start = sum(proc.cpu_times()[:2])
    stop_at = time.perf_counter() + seconds
    tick = 0.1
    per_tick = max(1, int(rate * tick))

    def sample() -> None:
        while time.perf_counter() < stop_at:
            time.sleep(1.0)
            cpu.append(proc.cpu_percent(None))
            rss.append(proc.memory_info().rss / 1e6)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sent = 0
    next_tick = time.perf_counter()
    while time.perf_counter() < stop_at:
        send(per_tick)
        sent += per_tick
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    sampler.join()
    return {"rate": sent / seconds, "sent": sent, "cpu_start": cpu_start,
            "cpu_mean": statistics.mean(cpu), "cpu_max": max(cpu),
            "rss_first": rss[0], "rss_half": rss[len(rss) // 2], "rss_last": rss[-1], "rss_max": max(rss)}


def celeriac_flow(url: str, rate: int, seconds: float, work: Path) -> dict[str, float]:
    import psutil

    app = bench_app(url)
    flush(url)
    db = work / f"flow-{rate}.db"
    dashboard, _ = start_dashboard(url, db, work / f"dashboard-flow-{rate}.log")
    worker = start_worker(url, work / f"worker-flow-{rate}.log")
    try:
        result = _sample(psutil.Process(dashboard.pid), lambda n: app.send_many("bench.noop", [((), {})] * n),
                         rate, seconds)
        sent = result["sent"]
        wait(lambda: app.control.queues(["celery"])[0].ready_total == 0, "the worker to catch up", 120, 0.05)
        result["lag"] = wait(lambda: succeeded_in(db) >= sent, "the history to catch up", 120, 0.05)
        result["cpu_seconds"] = sum(psutil.Process(dashboard.pid).cpu_times()[:2]) - result["cpu_start"]
        result["rss_settled"] = psutil.Process(dashboard.pid).memory_info().rss / 1e6
        return result
    finally:
        stop(worker)
        stop(dashboard)


def say(label: str, result: dict[str, float], seconds: float) -> None:
    print(f"{label}: {result['rate']:,.0f} tasks/s for {seconds:g} s ({result['sent']:,.0f} tasks)")
    print(f"  CPU   mean {result['cpu_mean']:.0f} %, max {result['cpu_max']:.0f} % of one core")
    print(f"  RSS   {result['rss_first']:.0f} MB after 1 s, {result['rss_half']:.0f} MB half way, "
          f"{result['rss_last']:.0f} MB at the end (max {result['rss_max']:.0f} MB)")
    if "held" in result:
        print(f"  SUCCESS tasks held once settled: {result['held']:,.0f} ({result['settled']:.0f} s after the last "
              f"event; RSS then {result['rss_settled']:.0f} MB)")
    if "cpu_seconds" in result:
        print(f"  CPU   {result['cpu_seconds']:.1f} s in all until it had every task "
              f"({result['cpu_seconds'] / result['sent'] * 1e6:.0f} us per task)")
    if "lag" in result:
        print(f"  history complete {result['lag']:.2f} s after the last task ran")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="tasks/s through celeriac's dashboard (0: skip)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--drain", type=int, default=20000, help="tasks per drain run")
    parser.add_argument("--rounds", type=int, default=2, help="drain runs per side, alternating (0: none)")
    parser.add_argument("--flower", type=int, metavar="RATE",
                        help="also Flower on Celery at RATE/s, then celeriac at the rate Celery reached")
    parser.add_argument("--flower-events", type=int, metavar="RATE",
                        help="also Flower fed a Celery cluster's events for RATE tasks/s (no Celery worker)")
    parser.add_argument("--senders", type=int, default=4, help="event sender processes for --flower-events")
    args = parser.parse_args()
    server = start_redis()
    os.environ["BENCH_BROKER_URL"] = server.url  # read by celeriac_tasks when first imported
    work = Path(tempfile.mkdtemp(prefix="celeriac-dashboard-load-"))
    try:
        url = server.url
        plain: list[float] = []
        attached: list[float] = []
        lags: list[float] = []
        for round_ in range(args.rounds):
            plain.append(drain(url, args.drain, work, False, f"plain{round_}")[0])
            took, lag = drain(url, args.drain, work, True, f"dash{round_}")
            attached.append(took)
            lags.append(lag or 0.0)
        if args.rounds:
            rate_plain = args.drain / statistics.median(plain)
            rate_attached = args.drain / statistics.median(attached)
            print(f"drain of {args.drain:,} noop tasks (worker -c 2, Redis), median of {args.rounds}:")
            print(f"  no dashboard        {rate_plain:9,.0f} tasks/s")
            print(f"  dashboard attached  {rate_attached:9,.0f} tasks/s   ratio {rate_attached / rate_plain:.2f}")
            print(f"  history complete    {statistics.median(lags):.2f} s after the queue emptied")
        if args.rate:
            say("celeriac dashboard", celeriac_flow(url, args.rate, args.seconds, work), args.seconds)
        if args.flower_events:
            fed = flower_events_flow(url, args.flower_events, args.seconds, work, args.senders)
            say("Flower 2.2 fed a Celery cluster's events", fed, args.seconds)
            say("celeriac dashboard, same rate", celeriac_flow(url, int(fed["rate"]), args.seconds, work),
                args.seconds)
        if args.flower:
            flower = celery_flow(url, args.flower, args.seconds, work)
            say("Flower 2.2 on Celery 5 (-E)", flower, args.seconds)
            # The same load for celeriac: the rate the Celery side really sent, not the one asked.
            say("celeriac dashboard", celeriac_flow(url, int(flower["rate"]), args.seconds, work), args.seconds)
    finally:
        server.stop()
        print(f"logs: {work}")


if __name__ == "__main__":
    main()
