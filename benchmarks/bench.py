#!/usr/bin/env python
"""celeriac vs Celery 5, side by side, on one fresh redis-server this script starts itself.

    .venv/bin/python benchmarks/bench.py            # full size (several minutes)
    .venv/bin/python benchmarks/bench.py --quick    # smoke run (< 60 s)
    .venv/bin/python benchmarks/bench.py --only celeriac --json out.json
    .venv/bin/python benchmarks/bench.py --profile /tmp/prof   # py-spy + cProfile, no table

Every phase runs each side back to back (celeriac on Redis, Celery on Redis, celeriac on SQLite)
so machine noise hits all of them alike; only ratios from one run mean anything. See README.md
for what each row measures and how.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

CELERY_INSTALL = ".venv/bin/pip install 'celery[redis]>=5.4,<6'   (or: .venv/bin/pip install -e '.[bench]')"
PHASE_TIMEOUT = 300.0        # no loop of any phase runs longer than this
QUEUE = "celery"             # the default queue of both
CONCURRENCY = 2
ALL_PHASES = ("enqueue", "drain", "latency", "rss")

SIZES = {
    # name: (enqueue/drain count, latency calls, countdown tasks, min wait after countdown enqueue)
    "full": (20_000, 1_000, 100_000, 15.0),
    "quick": (2_000, 200, 5_000, 3.0),
}


class BenchError(RuntimeError):
    """A phase could not finish: a worker died, a loop ran out of time, tasks went missing."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def require_celery() -> None:
    try:
        import celery
    except ImportError:
        sys.exit(f"bench.py: Celery 5 is not installed; it is needed for the comparison.\n"
                 f"  install it with:  {CELERY_INSTALL}\n  or run celeriac alone with --only celeriac")
    major, minor = (int(x) for x in celery.__version__.split(".")[:2])
    if major != 5 or minor < 4:
        sys.exit(f"bench.py: Celery {celery.__version__} found; the comparison wants 5.4-5.x.\n"
                 f"  install it with:  {CELERY_INSTALL}")


def require_psutil() -> Any:
    try:
        import psutil
    except ImportError:
        sys.exit("bench.py: psutil is needed for the RSS row: .venv/bin/pip install psutil  "
                 "(it is in the dev extra)")
    return psutil


# -- processes ------------------------------------------------------------------------------------
class WorkerProc:
    """A worker subprocess. Its pool children are remembered (psutil handles, which guard
    against PID reuse) so that stop() can SIGKILL any that outlive the supervisor."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        import psutil

        self.cmd = cmd
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.popen = subprocess.Popen(cmd, env=env, cwd=HERE, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.perf_counter()
        self.proc = psutil.Process(self.popen.pid)
        self.children: dict[int, Any] = {}
        STARTED.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pool(self) -> list[Any]:
        """The supervisor's descendants now (and remembered for stop())."""
        import psutil

        try:
            kids = self.proc.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for kid in kids:
            self.children.setdefault(kid.pid, kid)
        return kids

    def rss(self) -> tuple[int, list[tuple[int, int]]]:
        """Sum of RSS (bytes) of the supervisor and all its descendants, and the parts."""
        import psutil

        parts = []
        for p in [self.proc, *self.pool()]:
            try:
                parts.append((p.pid, p.memory_info().rss))
            except psutil.NoSuchProcess:
                pass
        return sum(r for _, r in parts), parts

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def problems(self) -> list[str]:
        """Log lines that say something went wrong (errors, tracebacks)."""
        out = []
        for line in self.log_text().splitlines():
            if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "Error:", "exited prematurely")):
                out.append(line.strip())
        return out

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the supervisor, SIGKILL it after ``timeout``, then SIGKILL leftover children."""
        import psutil

        self.pool()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"worker {self.pid} ignored SIGTERM for {timeout:.0f}s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        for kid in self.children.values():
            try:
                if kid.is_running():  # same pid *and* same start time: still our child
                    kid.send_signal(signal.SIGKILL)
                    kid.wait(5)
            except psutil.Error:
                pass
        if self in STARTED:
            STARTED.remove(self)


STARTED: list[WorkerProc] = []


def wait_for(pred: Callable[[], Any], *, what: str, interval: float, timeout: float = PHASE_TIMEOUT,
             worker: WorkerProc | None = None, state: Callable[[], Any] | None = None) -> float:
    """Poll ``pred`` until truthy; return perf_counter() at that moment. Bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return time.perf_counter()
        if worker is not None and not worker.alive():
            raise BenchError(f"{what}: the worker exited with code {worker.popen.returncode}; log tail:\n"
                             + worker.log_text()[-2000:])
        if time.monotonic() > deadline:
            extra = f" (state: {state()})" if state else ""
            raise BenchError(f"{what}: gave up after {timeout:.0f}s{extra}")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def reset_redis(raw: Any) -> None:
    """FLUSHALL (our private server only), then rewrite the AOF and wait for it, so an automatic
    AOF rewrite (a fork of redis-server) never lands in the middle of the next measurement."""
    import redis

    raw.flushall()
    with contextlib.suppress(redis.exceptions.ResponseError):  # one already in progress
        raw.bgrewriteaof()

    def done() -> bool:
        info = raw.info("persistence")
        return not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled")

    wait_for(done, what="AOF rewrite after FLUSHALL", interval=0.05, timeout=60)


# -- the sides ------------------------------------------------------------------------------------
class Side:
    key = ""
    label = ""
    module = ""
    has_batch = False

    def __init__(self, url: str, redis_url: str, logdir: Path) -> None:
        self.url = url
        self.redis_url = redis_url
        self.logdir = logdir
        self.workers = 0

    # implemented per side
    def flush(self) -> None: ...
    def send_single(self, task: str, n: int, **options: Any) -> list[str]: raise NotImplementedError
    def send_batch(self, task: str, n: int) -> list[str] | None: return None
    def depth(self) -> tuple[int, int]: raise NotImplementedError     # (ready, in flight)
    def results_ready(self, ids: list[str]) -> int: raise NotImplementedError
    def states(self, ids: list[str]) -> collections.Counter[str]: raise NotImplementedError
    def call_get(self, x: int, timeout: float) -> Any: raise NotImplementedError
    def worker_cmd(self, name: str) -> list[str]: raise NotImplementedError
    def delayed(self) -> int | None: return None
    def close(self) -> None: ...

    def start_worker(self, phase: str, extra_env: dict[str, str] | None = None) -> WorkerProc:
        self.workers += 1
        name = f"{self.key}-{phase}-{self.workers}"
        env = dict(os.environ)
        env.update(extra_env or {})
        env["BENCH_BROKER_URL"] = self.url
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return WorkerProc(self.worker_cmd(name), env, self.logdir / f"{name}.log")

    def timed_single(self, task: str, n: int, **options: Any) -> tuple[list[str], float]:
        self.send_single(task, 50, queue="bench-warmup")  # connections, scripts, imports; never consumed
        t0 = time.perf_counter()
        ids = self.send_single(task, n, **options)
        return ids, time.perf_counter() - t0


def enqueue_loop(task: Any, n: int, label: str, options: dict[str, Any]) -> list[str]:
    """The same single-call loop for both sides, so they are measured by identical code."""
    ids = []
    t0 = time.perf_counter()
    if options:
        for i in range(n):
            ids.append(task.apply_async(**options).id)
            _bounded(i, t0, f"{label} enqueue")
    else:
        for i in range(n):
            ids.append(task.delay().id)
            _bounded(i, t0, f"{label} enqueue")
    return ids


def _bounded(i: int, t0: float, what: str) -> None:
    if i % 1000 == 0 and time.perf_counter() - t0 > PHASE_TIMEOUT:
        raise BenchError(f"{what}: gave up after {PHASE_TIMEOUT:.0f}s at call {i}")


class CeleriacSide(Side):
    module = "celeriac_tasks"
    has_batch = True

    def __init__(self, url: str, redis_url: str, logdir: Path) -> None:
        super().__init__(url, redis_url, logdir)
        import celeriac_tasks

        self.m = celeriac_tasks
        self.activate()

    def activate(self) -> None:
        """Point the (shared) celeriac_tasks app at this side's broker."""
        app = self.m.app
        app.close()
        app.conf.broker_url = self.url
        app.conf.result_backend = self.url
        app._reset_connections()

    def send_single(self, task: str, n: int, **options: Any) -> list[str]:
        self.activate_if_needed()
        return enqueue_loop(self.m.app.tasks[task], n, self.label, options)

    def send_batch(self, task: str, n: int) -> list[str]:
        self.activate_if_needed()
        calls = [((), {})] * n
        return [r.id for r in self.m.app.send_many(task, calls)]

    def activate_if_needed(self) -> None:
        if self.m.app.conf.broker_url != self.url:
            self.activate()

    def stats(self) -> Any:
        self.activate_if_needed()
        return self.m.app.broker.stats([QUEUE])[0]

    def depth(self) -> tuple[int, int]:
        s = self.stats()
        return s.ready_total, s.unacked

    def delayed(self) -> int | None:
        return self.stats().delayed

    def dead(self) -> int:
        return self.stats().dead

    def states(self, ids: list[str]) -> collections.Counter[str]:
        self.activate_if_needed()
        from celeriac import message

        out: collections.Counter[str] = collections.Counter()
        for i in range(0, len(ids), 5000):
            for raw in self.m.app.backend.read_many(ids[i:i + 5000]):
                out["MISSING" if raw is None else message.loads(raw).get("status", "?")] += 1
        return out

    def call_get(self, x: int, timeout: float) -> Any:
        return self.m.echo.delay(x).get(timeout=timeout)

    def worker_cmd(self, name: str) -> list[str]:
        return [sys.executable, "-m", "celeriac", "-A", self.module, "worker", "-c", str(CONCURRENCY),
                "-l", "warning", "-n", f"{name}@%h"]


class CeleriacRedis(CeleriacSide):
    key = "celeriac"
    label = "celeriac (Redis)"

    def __init__(self, url: str, redis_url: str, logdir: Path) -> None:
        import redis

        self.raw = redis.Redis.from_url(redis_url)
        super().__init__(url, redis_url, logdir)

    def flush(self) -> None:
        self.m.app.close()
        reset_redis(self.raw)
        self.activate()

    def results_ready(self, ids: list[str]) -> int:
        from celeriac.backends.redis import meta_key

        return sum(int(self.raw.exists(*[meta_key(i) for i in ids[k:k + 5000]]))
                   for k in range(0, len(ids), 5000))

    def close(self) -> None:
        self.m.app.close()
        self.raw.close()


class CeleriacBefore(CeleriacRedis):
    """celeriac workers from another source tree (``--before``, e.g. a ``git worktree`` of the
    commit before a change on the per-task path), on the same Redis in the same run, so a
    change's cost is read as two ratios against the same Celery figures."""

    key = "before"
    label = "celeriac before (Redis)"

    def __init__(self, url: str, redis_url: str, logdir: Path, src: Path) -> None:
        self.src = src
        super().__init__(url, redis_url, logdir)

    def start_worker(self, phase: str, extra_env: dict[str, str] | None = None) -> WorkerProc:
        env = dict(extra_env or {})
        env["PYTHONPATH"] = os.pathsep.join([str(self.src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return super().start_worker(phase, env)


class CeleriacSQLite(CeleriacSide):
    key = "sqlite"
    label = "celeriac (SQLite)"

    def __init__(self, path: Path, redis_url: str, logdir: Path) -> None:
        self.path = path
        super().__init__(f"sqlite:///{path}", redis_url, logdir)

    def flush(self) -> None:
        self.m.app.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        self.activate()

    def results_ready(self, ids: list[str]) -> int:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            return int(conn.execute("SELECT count(*) FROM results WHERE ready = 1").fetchone()[0])
        except sqlite3.OperationalError:  # table not created yet
            return 0
        finally:
            conn.close()

    def close(self) -> None:
        self.m.app.close()


class CeleryRedis(Side):
    key = "celery"
    label = "Celery 5 (Redis)"
    module = "celery_tasks"
    SEP = "\x06\x16"  # kombu's Redis priority-list separator; steps 0, 3, 6, 9

    def __init__(self, url: str, redis_url: str, logdir: Path) -> None:
        super().__init__(url, redis_url, logdir)
        import redis

        os.environ["BENCH_BROKER_URL"] = url
        import celery_tasks

        celery_tasks.app.conf.broker_url = url
        celery_tasks.app.conf.result_backend = url
        self.m = celery_tasks
        self.raw = redis.Redis.from_url(redis_url)
        self.lists = [QUEUE] + [f"{QUEUE}{self.SEP}{p}" for p in (3, 6, 9)]

    def flush(self) -> None:
        reset_redis(self.raw)

    def send_single(self, task: str, n: int, **options: Any) -> list[str]:
        return enqueue_loop(self.m.app.tasks[task], n, self.label, options)

    def depth(self) -> tuple[int, int]:
        pipe = self.raw.pipeline(transaction=False)
        for name in self.lists:
            pipe.llen(name)
        pipe.hlen("unacked")
        *lens, unacked = pipe.execute()
        return sum(lens), unacked

    def results_ready(self, ids: list[str]) -> int:
        return sum(int(self.raw.exists(*[f"celery-task-meta-{i}" for i in ids[k:k + 5000]]))
                   for k in range(0, len(ids), 5000))

    def states(self, ids: list[str]) -> collections.Counter[str]:
        out: collections.Counter[str] = collections.Counter()
        for k in range(0, len(ids), 5000):
            for raw in self.raw.mget([f"celery-task-meta-{i}" for i in ids[k:k + 5000]]):
                out["MISSING" if raw is None else json.loads(raw).get("status", "?")] += 1
        return out

    def call_get(self, x: int, timeout: float) -> Any:
        return self.m.echo.delay(x).get(timeout=timeout)

    def worker_cmd(self, name: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", self.module, "worker", "-c", str(CONCURRENCY),
                "-P", "prefork", "-l", "warning", "-n", f"{name}@%h"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.m.app.close()
        self.raw.close()


# -- phases ---------------------------------------------------------------------------------------
@dataclass
class Run:
    sizes: tuple[int, int, int, float]
    results: dict[str, dict[str, Any]] = field(default_factory=lambda: collections.defaultdict(dict))
    problems: list[str] = field(default_factory=list)

    def put(self, side: Side, key: str, value: Any) -> None:
        self.results[side.key][key] = value

    def problem(self, side: Side, phase: str, text: str) -> None:
        line = f"{side.label} / {phase}: {text}"
        self.problems.append(line)
        log("PROBLEM " + line)


def note_worker_problems(run: Run, side: Side, phase: str, worker: WorkerProc) -> None:
    lines = worker.problems()
    if lines:
        shown = "\n    ".join(lines[:8])
        run.problem(side, phase, f"{len(lines)} error line(s) in {worker.log_path}:\n    {shown}")


def drain(run: Run, side: Side, task: str, *, batch: bool, store: bool, tag: str,
          extra_env: dict[str, str] | None = None) -> None:
    """Enqueue n noops with no worker running (timed: the enqueue rows), start one worker, and
    time from the first task leaving the queue until the queue is empty, nothing is in flight
    and (when results are stored) every result is in the store."""
    n = run.sizes[0]
    side.flush()
    if batch and side.has_batch:
        side.send_single(task, 50, queue="bench-warmup")
        t0 = time.perf_counter()
        ids = side.send_batch(task, n) or []
        secs = time.perf_counter() - t0
        run.put(side, "enqueue_batch" if tag == "drain_ignore" else f"{tag}_enqueue_batch", n / secs)
        log(f"{side.label}: batch enqueue {n} in {secs:.2f}s = {n / secs:,.0f}/s")
    else:
        ids, secs = side.timed_single(task, n)
        run.put(side, f"{tag}_enqueue_single" if tag != "drain_results" else "enqueue_single", n / secs)
        log(f"{side.label}: {n} single delay() in {secs:.2f}s = {n / secs:,.0f}/s")
    ready, inflight = side.depth()
    if ready != n:
        run.problem(side, tag, f"after enqueueing {n} tasks the queue holds {ready} ready, {inflight} in flight")
    worker = side.start_worker(tag, extra_env)
    try:
        t_first = wait_for(lambda: side.depth()[0] < n, what=f"{side.label} {tag}: first task taken",
                           interval=0.005, worker=worker, state=side.depth)
        wait_for(lambda: side.depth() == (0, 0), what=f"{side.label} {tag}: queue drained",
                 interval=0.05, worker=worker, state=side.depth)
        if store:
            t_end = wait_for(lambda: side.results_ready(ids) >= n, what=f"{side.label} {tag}: all results stored",
                             interval=0.02, worker=worker, state=lambda: side.results_ready(ids))
        else:
            t_end = time.perf_counter()
        rate = n / (t_end - t_first)
        run.put(side, tag, rate)
        run.put(side, f"{tag}_startup_s", t_first - worker.started)
        log(f"{side.label}: {tag}: {n} in {t_end - t_first:.2f}s = {rate:,.0f}/s "
            f"(worker start to first task {t_first - worker.started:.2f}s)")
        if store:
            counts = side.states(ids)
            if counts.get("SUCCESS", 0) != n:
                run.problem(side, tag, f"result states after drain: {dict(counts)} (expected {n} SUCCESS)")
        if isinstance(side, CeleriacSide) and side.dead():
            run.problem(side, tag, f"{side.dead()} dead-lettered messages after drain")
    finally:
        worker.stop()
        note_worker_problems(run, side, tag, worker)


def latency_and_rss(run: Run, side: Side, *, rss: bool) -> None:
    """One worker: 1,000 sequential delay().get() (after a warm-up), then RSS before/after
    ``countdown=3600`` tasks are enqueued and the worker had time to fetch what it would."""
    import psutil  # noqa: F401  (checked in main)

    _, calls, countdown_n, min_wait = run.sizes
    side.flush()
    worker = side.start_worker("latency")
    try:
        deadline = time.monotonic() + 120
        while True:  # the first call also waits for the worker to come up
            try:
                side.call_get(-1, timeout=5)
                break
            except Exception as exc:
                if not worker.alive() or time.monotonic() > deadline:
                    raise BenchError(f"{side.label}: worker never answered: {exc!r}\n{worker.log_text()[-2000:]}")
        for i in range(50):
            side.call_get(i, timeout=10)
        lat = []
        t_phase = time.perf_counter()
        for i in range(calls):
            t0 = time.perf_counter()
            got = side.call_get(i, timeout=10)
            lat.append(time.perf_counter() - t0)
            if got != i:
                run.problem(side, "latency", f"echo({i}) returned {got!r}")
            if time.perf_counter() - t_phase > PHASE_TIMEOUT:
                raise BenchError(f"{side.label} latency: gave up after {PHASE_TIMEOUT:.0f}s")
        run.put(side, "lat_p50_ms", percentile(lat, 0.5) * 1000)
        run.put(side, "lat_p99_ms", percentile(lat, 0.99) * 1000)
        run.put(side, "lat_mean_ms", statistics.fmean(lat) * 1000)
        log(f"{side.label}: latency p50 {percentile(lat, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(lat, 0.99) * 1000:.2f} ms")
        if not rss:
            return
        time.sleep(2)
        readings = []
        for _ in range(3):
            readings.append(worker.rss()[0])
            time.sleep(0.5)
        before = statistics.median(readings)
        _, parts = worker.rss()
        run.put(side, "rss_procs", len(parts))
        t0 = time.perf_counter()
        side.send_single("bench.noop", countdown_n, countdown=3600)
        secs = time.perf_counter() - t0
        run.put(side, "enqueue_countdown", countdown_n / secs)
        log(f"{side.label}: {countdown_n} countdown=3600 tasks enqueued in {secs:.1f}s; waiting for the worker")
        t_enq = time.monotonic()
        samples: list[float] = []
        settled = False
        while time.monotonic() - t_enq < PHASE_TIMEOUT:
            if not worker.alive():
                raise BenchError(f"{side.label}: worker died holding countdown tasks:\n{worker.log_text()[-2000:]}")
            samples.append(worker.rss()[0])
            ready, _ = side.depth()
            recent = samples[-5:]
            if (time.monotonic() - t_enq >= min_wait and ready == 0 and len(recent) == 5
                    and max(recent) - min(recent) < 1 << 20):
                settled = True
                break
            time.sleep(1.0)
        after = statistics.median(samples[-3:])
        if not settled:
            run.problem(side, "rss", f"worker RSS/queue not settled after {PHASE_TIMEOUT:.0f}s "
                        f"(ready still {side.depth()[0]}); RSS taken as of now")
        run.put(side, "rss_before_mb", before / 2**20)
        run.put(side, "rss_after_mb", after / 2**20)
        run.put(side, "rss_growth_mb", (after - before) / 2**20)
        run.put(side, "rss_growth_pct", (after - before) / before * 100)
        run.put(side, "rss_wait_s", time.monotonic() - t_enq)
        log(f"{side.label}: RSS {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB "
            f"({(after - before) / before * 100:+.1f} %) after {time.monotonic() - t_enq:.0f}s")
        delayed = side.delayed()
        if delayed is not None and delayed != countdown_n:
            run.problem(side, "rss", f"{delayed} delayed messages in the broker, expected {countdown_n}")
    finally:
        worker.stop(timeout=10)
        note_worker_problems(run, side, "latency/rss", worker)


def guarded(run: Run, side: Side, phase: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except BenchError as exc:
        run.problem(side, phase, str(exc))
    except Exception as exc:  # a failure in one side must not hide the others' figures
        import traceback

        run.problem(side, phase, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}")


# -- the table ------------------------------------------------------------------------------------
ROWS = [
    # key, label, unit, higher_is_better, target ratio (celeriac/Celery), note
    ("enqueue_single", "enqueue: 20k single delay()", "/s", True, 5.0, ""),
    ("enqueue_batch", "enqueue: send_many batch vs Celery single*", "/s", True, 50.0,
     "*Celery has no batch API: its single-call rate"),
    ("drain_results", "drain 20k noop, results stored (-c 2)", "/s", True, 10.0, ""),
    ("drain_ignore", "drain 20k noop, ignore_result (-c 2)", "/s", True, 10.0, ""),
    ("drain_results_noevents", "drain 20k noop, results, celeriac events off†", "/s", True, None,
     "†worker_send_task_events=False, Celery's default (celeriac's is on)"),
    ("drain_results_startup_s", "worker start to first task taken", "s", False, None, ""),
    ("lat_p50_ms", "delay().get() latency p50", "ms", False, 1 / 3, ""),
    ("lat_p99_ms", "delay().get() latency p99", "ms", False, None, ""),
    ("rss_before_mb", "worker RSS before (sup.+children)", "MB", False, None, ""),
    ("rss_after_mb", "worker RSS after countdown tasks", "MB", False, None, ""),
    ("rss_growth_mb", "worker RSS growth", "MB", False, None, ""),
    ("rss_growth_pct", "worker RSS growth", "%", False, None, "target: celeriac within 5 %"),
    ("enqueue_countdown", "enqueue: countdown=3600 apply_async", "/s", True, None, ""),
]


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "%":
        return f"{value:+.1f} %"
    if unit == "MB":
        return f"{value:,.1f} MB"
    return f"{value:.2f} {unit}"


def ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def judge(r: float | None, target: float | None, higher: bool) -> str:
    if r is None or target is None:
        return ""
    ok = r >= target if higher else r <= target
    want = f"≥{target:g}x" if higher else f"≤{target:.2f}x"
    return f"{'PASS' if ok else 'MISS'} ({want})"


def table_rows(run: Run) -> list[list[str]]:
    n, _, countdown_n, _ = run.sizes
    c, k, s = run.results.get("celeriac", {}), run.results.get("celery", {}), run.results.get("sqlite", {})
    rows = []
    for key, label, unit, higher, target, note in ROWS:
        label = label.replace("20k", f"{n // 1000}k" if n >= 1000 else str(n))
        if key.startswith("rss_after") or key == "enqueue_countdown":
            label += f" ({countdown_n:,})"
        cv, kv, sv = c.get(key), k.get(key), s.get(key)
        if key == "enqueue_batch":
            kv = k.get("enqueue_single")
        if key == "drain_results_noevents":
            kv = k.get("drain_results")
        if (cv is None and kv is None and sv is None) or (key == "drain_results_noevents" and cv is None):
            continue
        if key == "rss_growth_pct":
            r_text = ""
            if cv is not None:
                r_text = "PASS (≤5 %)" if abs(cv) <= 5 else "MISS (≤5 %)"
            rows.append([label, fmt(cv, unit), fmt(kv, unit), "", r_text, fmt(sv, unit), "", note])
            continue
        r = ratio(cv, kv)
        rs = ratio(sv, kv)
        sqlite_target = 2.0 if key == "drain_results" or key == "drain_ignore" else None
        rows.append([label, fmt(cv, unit), fmt(kv, unit), f"{r:.2f}x" if r is not None else "",
                     judge(r, target, higher), fmt(sv, unit), f"{rs:.2f}x" if rs is not None else "",
                     (judge(rs, sqlite_target, higher) + " " + note).strip()])
    return rows


HEADERS = ["metric", "celeriac Redis", "Celery 5 Redis", "celeriac/Celery", "target",
           "celeriac SQLite", "SQLite/Celery", "notes"]


def print_table(run: Run) -> None:
    rows = table_rows(run)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency, but a plain table is fine too
        print(" | ".join(HEADERS))
        for row in rows:
            print(" | ".join(row))
        return
    table = Table(title=f"celeriac vs Celery {celery_version()} — one run, one redis-server, "
                  f"prefork -c {CONCURRENCY}, prefetch 4, -l warning", show_lines=False)
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("metric", "notes") else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)


def print_before(run: Run) -> None:
    """With --before: the drain rows of both celeriac trees against the same Celery figures."""
    before, after, celery = (run.results.get(k, {}) for k in ("before", "celeriac", "celery"))
    if not before:
        return
    print("drain, before vs after (one run, one redis-server; ratios against the same Celery figures):")
    for key in ("drain_results", "drain_ignore"):
        b, a, k = before.get(key), after.get(key), celery.get(key)
        rb, ra = ratio(b, k), ratio(a, k)
        print(f"  {key:14} before {fmt(b, '/s'):>10} ({rb or 0:.2f}x)   after {fmt(a, '/s'):>10} "
              f"({ra or 0:.2f}x)   Celery {fmt(k, '/s'):>10}")


def source_version() -> str:
    """The commit celeriac ran from, and whether src/ had uncommitted changes (others edit it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted src/ changes' if dirty else ''}" if head else "unknown"


def celery_version() -> str:
    try:
        import celery

        return celery.__version__
    except ImportError:
        return "5 (not installed)"


# -- profiling ------------------------------------------------------------------------------------
BOILERPLATE = ("click/", "<frozen runpy>", "threading.py", "celeriac/cli/", "celeriac/__main__.py",
               "Supervisor.run", "Supervisor._spawn", "Worker.start", "process ", "thread (")


def collapsed_top(paths: list[Path], n: int = 22) -> str:
    """Summarise py-spy collapsed stacks (one or more files, e.g. both pool processes): samples
    per thread, the functions with the most self samples, and the celeriac functions with the
    most inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_s = line.rpartition(" ")
            if not stack or not count_s.isdigit():
                continue
            count = int(count_s)
            frames = stack.split(";")
            total += count
            thread = next((f for f in frames if f.startswith("thread (")), "?")
            threads[thread.split(": ", 1)[-1].split("@")[0].split("/")[0]] += count
            own[frames[-1]] += count
            for frame in set(frames):
                if not any(b in frame for b in BOILERPLATE):
                    incl[frame] += count
    if not total:
        return "no samples"
    out = [f"{total} samples; by thread: " + ", ".join(f"{t} {c / total * 100:.0f}%" for t, c in threads.most_common())]
    out.append("  self%  function (leaf frame)")
    out += [f"  {c / total * 100:5.1f}  {f}" for f, c in own.most_common(n)]
    out.append("  incl%  function (celeriac and library frames on the stack)")
    out += [f"  {c / total * 100:5.1f}  {f}" for f, c in incl.most_common(n)]
    return "\n".join(out)


def profile(sides: list[Side], outdir: Path, n: int) -> None:
    """cProfile the enqueue paths in this process; py-spy the pool processes while they drain:
    once with --gil (only the thread holding the GIL: where Python CPU time goes) and once
    with --idle (wall clock, including waits on sockets and locks)."""
    outdir.mkdir(parents=True, exist_ok=True)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(pyspy):
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    for side in sides:
        if not isinstance(side, CeleriacSide):
            continue
        side.flush()
        side.send_single("bench.noop", 50, queue="bench-warmup")
        for what, fn in (("enqueue_single", lambda s=side: s.send_single("bench.noop", n)),
                         ("enqueue_batch", lambda s=side: s.send_batch("bench.noop", n))):
            prof = cProfile.Profile()
            prof.enable()
            fn()
            prof.disable()
            prof.dump_stats(outdir / f"{side.key}-{what}.pstats")
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
            (outdir / f"{side.key}-{what}.txt").write_text(buf.getvalue())
            print(f"\n=== {side.label}: {what} ({n} calls), cProfile by own time ===")
            print("\n".join(line for line in buf.getvalue().splitlines()[:40] if line.strip()))
        for task in ("bench.noop", "bench.noop_ignore"):
            for mode in ("gil", "idle"):
                side.flush()
                side.send_batch(task, n)
                worker = side.start_worker("profile")
                spies: list[tuple[Path, subprocess.Popen[bytes]]] = []
                try:
                    wait_for(lambda w=worker: len(w.pool()) >= CONCURRENCY, what="pool up", interval=0.01,
                             worker=worker)
                    for kid in worker.pool()[:CONCURRENCY]:
                        raw = outdir / f"{side.key}-{task}-{mode}-child{kid.pid}.txt"
                        spies.append((raw, subprocess.Popen(
                            [pyspy, "record", "--pid", str(kid.pid), "--rate", "500", "--threads",
                             "--nonblocking", f"--{mode}", "--format", "raw", "-o", str(raw)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
                    t0 = time.perf_counter()
                    wait_for(lambda s=side: s.depth() == (0, 0), what="profiled drain", interval=0.05,
                             worker=worker)
                    log(f"{side.label}: profiled ({mode}) drain of {n} {task} in "
                        f"{time.perf_counter() - t0:.2f}s (py-spy slows it)")
                finally:
                    for _, spy in spies:
                        if spy.poll() is None:
                            spy.send_signal(signal.SIGINT)
                    for _, spy in spies:
                        try:
                            spy.wait(30)
                        except subprocess.TimeoutExpired:
                            spy.kill()
                            spy.wait(5)
                    worker.stop()
                files = [raw for raw, _ in spies if raw.exists()]
                print(f"\n=== {side.label}: drain {n} {task}, py-spy --{mode}, both pool processes ===")
                print(collapsed_top(files) if files else "py-spy wrote nothing: " +
                      "; ".join((spy.stderr.read() or b"").decode(errors="replace")[-300:]
                                for _, spy in spies if spy.stderr))


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts: a smoke run in < 60 s")
    parser.add_argument("--only", choices=("celeriac", "celery"), help="run one side only")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the celeriac-on-SQLite rows")
    parser.add_argument("--phases", default=",".join(ALL_PHASES),
                        help=f"comma-separated subset of {','.join(ALL_PHASES)}")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--before", metavar="SRC", help="also run workers from this source tree (its src/ "
                        "directory, e.g. a git worktree of an older commit) beside the current ones")
    parser.add_argument("--keep-logs", action="store_true", help="keep worker logs even when all went well")
    parser.add_argument("--profile", metavar="DIR", help="profile celeriac instead of benchmarking "
                        "(cProfile on enqueue, py-spy on the pool processes while they drain)")
    args = parser.parse_args(argv)
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.phases - set(ALL_PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(args.phases - set(ALL_PHASES)))}")
    return args


def run_phases(run: Run, sides: list[Side], phases: set[str], quick: bool) -> None:
    """Each phase runs every side back to back, so noise on the machine hits them alike."""
    if "enqueue" in phases or "drain" in phases:
        for side in sides:
            guarded(run, side, "drain_results",
                    lambda s=side: drain(run, s, "bench.noop", batch=False, store=True, tag="drain_results"))
        for side in sides:
            guarded(run, side, "drain_ignore",
                    lambda s=side: drain(run, s, "bench.noop_ignore", batch=True, store=False, tag="drain_ignore"))
        for side in sides:
            if isinstance(side, CeleriacRedis) and not isinstance(side, CeleriacBefore) and not quick:
                # celeriac sends task events by default, Celery only with -E: what do they cost?
                guarded(run, side, "drain_results_noevents",
                        lambda s=side: drain(run, s, "bench.noop", batch=True, store=True,
                                             tag="drain_results_noevents",
                                             extra_env={"BENCH_CELERIAC_TASK_EVENTS": "0"}))
    if "latency" in phases or "rss" in phases:
        for side in sides:
            rss = "rss" in phases and not isinstance(side, CeleriacSQLite)
            guarded(run, side, "latency/rss", lambda s=side, r=rss: latency_and_rss(run, s, rss=r))


def report(run: Run, args: argparse.Namespace, t_start: float) -> None:
    sizes = run.sizes
    run.results["meta"] = {
        "sizes": {"enqueue_drain": sizes[0], "latency_calls": sizes[1], "countdown_tasks": sizes[2]},
        "celery": celery_version(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
        "concurrency": CONCURRENCY, "seconds": round(time.perf_counter() - t_start, 1),
        "loadavg": os.getloadavg(), "celeriac_source": source_version(),
    }
    print_table(run)
    print_before(run)
    print(f"(celeriac at {run.results['meta']['celeriac_source']}; run took {time.perf_counter() - t_start:.0f}s; "
          f"loadavg {os.getloadavg()[0]:.2f}; "
          f"ratios are celeriac/Celery: > 1 is better for rates, < 1 is better for latency)")
    if args.json:
        table = [dict(zip(HEADERS, r, strict=True)) for r in table_rows(run)]
        Path(args.json).write_text(json.dumps({"results": run.results, "problems": run.problems, "table": table},
                                              indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only != "celeriac" and not args.profile:
        require_celery()
    require_psutil()
    sizes = SIZES["quick" if args.quick else "full"]

    from redis_server import start_redis

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so finally-blocks stop our processes
    tmp = Path(tempfile.mkdtemp(prefix="celeriac-bench-"))
    logdir = tmp / "logs"
    logdir.mkdir()
    server = None
    sides: list[Side] = []
    run = Run(sizes)
    t_start = time.perf_counter()
    try:
        # AOF on (start_redis's default, as production runs), fsync left to the OS.
        server = start_redis()
        log(f"redis-server pid {server.proc.pid} on {server.url}; logs in {logdir}")
        if args.only != "celery":
            sides.append(CeleriacRedis(server.url, server.url, logdir))
        if args.before:
            sides.append(CeleriacBefore(server.url, server.url, logdir, Path(args.before).resolve()))
        if args.only != "celeriac" and not args.profile:
            sides.append(CeleryRedis(server.url, server.url, logdir))
        if args.only != "celery" and not args.no_sqlite:
            sides.append(CeleriacSQLite(tmp / "bench.db", server.url, logdir))
        if args.profile:
            profile(sides, Path(args.profile), sizes[0])
            return 0
        run_phases(run, sides, args.phases, args.quick)
    finally:
        for worker in list(STARTED):
            worker.stop(timeout=5)
        for side in sides:
            with contextlib.suppress(Exception):
                side.close()
        if server is not None:
            server.stop()
    report(run, args, t_start)
    if run.problems:
        print("\nProblems:")
        for p in run.problems:
            print(" - " + p)
        print(f"(worker logs kept in {logdir})")
        return 1
    if args.keep_logs:
        print(f"(worker logs in {logdir})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
