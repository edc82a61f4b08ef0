"""The fault rows. Each takes a ``Run`` (one fresh broker, one side, one ledger) and returns
what the checker made of it; every wait is bounded by the profile's timeout."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faults import ledger as ledger_mod
from faults.check import Faults, Outcome, Producer, judge
from faults.procs import Proc, Restarter
from faults.sides import Lease, Side, make


@dataclass(frozen=True)
class Profile:
    name: str
    lease: Lease
    storm_tasks: int       # tasks of the kill storm
    storm_kills: int       # kill -9s in the storm (one every ``storm_every`` s)
    storm_every: float
    task_seconds: float    # how long an ordinary task of the storm runs
    burst: int             # delayed tasks due at once
    beat_seconds: float    # how long the three beats run
    timeout: float         # the longest any row waits for its tasks after its last fault
    failover_tasks: int = 600  # tasks flowing while the Sentinel master is killed (half before, half after)


QUICK = Profile("quick", Lease(2.0, 0.5), storm_tasks=60, storm_kills=3, storm_every=2.0, task_seconds=0.3,
                burst=20_000, beat_seconds=10.0, timeout=45.0)
SOAK = Profile("soak", Lease(2.0, 0.5), storm_tasks=1_500, storm_kills=30, storm_every=3.0, task_seconds=0.3,
               burst=100_000, beat_seconds=120.0, timeout=300.0, failover_tasks=5_000)
PROFILES = {p.name: p for p in (QUICK, SOAK)}
HOST = "battery"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class Run:
    """One row on one side: its own broker (a private redis-server or an SQLite file), its own
    ledger, the processes it started (all stopped by PID in ``close``)."""

    def __init__(self, row: str, kind: str, broker: str, profile: Profile, root: Path,
                 appendfsync: str = "everysec", sqlite_dir: Path | None = None, wait_replicas: int = 0) -> None:
        self.row, self.profile, self.appendfsync = row, profile, appendfsync
        self.directory = root / f"{slug(row)}-{kind}-{broker}"
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        self.ledger_path = self.directory / "ledger"
        self.redis: Any = None
        self.sentinels: Any = None
        self.cluster: Any = None
        transport: dict[str, Any] | None = None
        if broker == "cluster":  # three masters and a replica of each, of the row's own
            from redis_server import start_cluster_setup

            self.cluster = start_cluster_setup(node_timeout_ms=1000)
            url = self.cluster.url
            transport = {"wait_replicas": wait_replicas} if wait_replicas else None
        elif broker == "sentinel":  # a master, a replica and three Sentinels of the row's own
            from redis_server import start_sentinel_setup

            self.sentinels = start_sentinel_setup(down_after_ms=1000, failover_timeout_ms=3000)
            url = self.sentinels.url
            transport = {**self.sentinels.transport_options,
                         **({"wait_replicas": wait_replicas} if wait_replicas else {})}
        elif broker == "redis":
            from redis_server import start_redis

            self.redis = start_redis("--maxmemory-policy", "noeviction", appendonly=True, appendfsync=appendfsync)
            url = self.redis.url
        else:
            url = f"sqlite:///{(sqlite_dir or self.directory) / 'broker.db'}"
        self.side: Side = make(kind, url, self.directory, self.ledger_path, profile.lease, transport)
        self.producer = Producer()
        self.faults = Faults()
        self.procs: list[Proc] = []
        self.restarters: list[Restarter] = []
        self.outcome = Outcome(row, self.side.label, self.side.describe_lease())

    # -- processes ------------------------------------------------------------------------------
    def worker(self, name: str, concurrency: int = 2, prefetch: int = 4) -> Restarter:
        def start() -> Proc:
            proc = self.side.worker(f"{name}@{HOST}", concurrency, prefetch)
            self.procs.append(proc)
            return proc

        keeper = Restarter(start)
        self.restarters.append(keeper)
        if not keeper.up(30):
            raise RuntimeError(f"worker {name} did not start:\n{keeper.proc.log()[-2000:] if keeper.proc else ''}")
        return keeper

    def kill_and_restart(self, keeper: Restarter) -> None:
        """kill -9 a worker and start it again under the same name, as a process manager would."""
        assert keeper.proc is not None
        self.faults.killed(keeper.proc.kill9())
        if not keeper.up(30):
            raise RuntimeError("a worker restarted under its own name never became ready")

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.stop(10)
        with contextlib.suppress(Exception):
            self.side.close()
        if self.redis is not None:
            self.redis.stop()
        if self.sentinels is not None:
            self.sentinels.stop()
        if self.cluster is not None:
            self.cluster.stop()

    # -- tasks ----------------------------------------------------------------------------------
    def send(self, name: str, args: list[Any], countdown: float | None = None) -> str:
        task_id = f"{name.split('.')[-1]}-{uuid.uuid4().hex[:12]}"
        self.producer.send(lambda: self.side.send(name, args, task_id, countdown), task_id)
        return task_id

    def ledger(self) -> ledger_mod.Ledger:
        return ledger_mod.read(str(self.ledger_path))

    def wait_done(self, ids: set[str], timeout: float, crashing: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
        """Until every id ended (a crashing one: is stored as failed), or ``timeout``."""
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while time.monotonic() < deadline:
            pending -= self.ledger().ended_ids()
            pending -= {t for t in pending & crashing if self.side.result(t)[0] == "FAILURE"}
            if not pending:
                return True
            time.sleep(0.25)
        return False

    def judge(self, crashing: set[str] = frozenset(), raw: set[str] = frozenset(),  # type: ignore[assignment]
              check_results: bool = True) -> Outcome:
        ledger = self.ledger()
        outcome = judge(self.outcome, self.producer, ledger, self.faults, self.side.result, crashing=crashing,
                        raw=raw, check_results=check_results)
        outcome.extra["restarts refused"] = sum(k.refused for k in self.restarters)
        return outcome

    def births_after(self, moment: float) -> int:
        return sum(1 for _, born in self.ledger().births if born > moment)

    def started_by(self, worker: str) -> int:
        return sum(1 for runs in self.ledger().attempts.values() for a in runs if a.worker.startswith(worker + "@"))


def _settle(run: Run) -> None:
    """Long enough after the last task for a lapsed lease to be reclaimed and a stale attempt to
    run again, if that is going to happen."""
    time.sleep(run.profile.lease.seconds * 2 + 1)


# -- rows -------------------------------------------------------------------------------------------
def kill_storm(run: Run, workers: int = 2, concurrency: int = 2) -> Outcome:
    """kill -9 whole workers again and again while they work; each comes back under its own name."""
    p = run.profile
    keepers = [run.worker(f"w{i + 1}", concurrency) for i in range(workers)]
    ids: list[str] = []
    half = p.storm_tasks // 2
    ids += [run.send("faults.work", [p.task_seconds]) for _ in range(half)]
    rest = p.storm_tasks - half
    spacing = p.storm_kills * p.storm_every / max(rest, 1)

    def trickle() -> None:
        for _ in range(rest):
            ids.append(run.send("faults.work", [p.task_seconds]))
            time.sleep(spacing)

    producer = threading.Thread(target=trickle, daemon=True)
    producer.start()
    for k in range(p.storm_kills):
        time.sleep(p.storm_every)
        run.kill_and_restart(keepers[k % workers])
    producer.join(p.timeout)
    run.wait_done(set(run.producer.sent), p.timeout)
    _settle(run)
    return run.judge()


def prefetched_backlog(run: Run, kills: int = 5) -> Outcome:
    """Two workers holding a deep prefetch killed -9 in turn: messages that never started in the
    killed workers must not be charged as poison (past ``task_max_redeliveries`` they would be
    dead-lettered, which counts as lost here)."""
    p = run.profile
    keepers = [run.worker("a", 2, prefetch=8), run.worker("b", 2, prefetch=8)]
    ids = {run.send("faults.work", [1.0]) for _ in range(80)}
    for k in range(kills):
        time.sleep(2.5)
        run.kill_and_restart(keepers[k % 2])
    run.wait_done(ids, p.timeout)
    _settle(run)
    outcome = run.judge()
    outcome.extra["dead-lettered"] = len(run.side.dead_letters())
    return outcome


def zombie(run: Run) -> Outcome:
    """SIGSTOP a worker's whole process group past its lease while it runs and holds tasks, then
    SIGCONT it beside a live worker that took its tasks over."""
    p = run.profile
    # Queued before the zombie starts, so its first fetches take a full prefetch: it holds eight
    # (two running, six prefetched: prefetch 4 per process counts the running one), two are left
    # for the idle rescuer, which has room for most of the eight once the zombie's lease lapses.
    ids = {run.send("faults.work", [1.5]) for _ in range(10)}
    paused = run.worker("zombie", 2, prefetch=4)
    deadline = time.monotonic() + 20
    while run.started_by("zombie") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    deadline = time.monotonic() + 0.8  # the two running tasks must still run when it is paused
    while run.side.held() < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert paused.proc is not None
    run.worker("rescuer", 2, prefetch=4)
    began = time.monotonic()
    pids = paused.proc.pause()
    time.sleep(p.lease.seconds * 2.5)
    paused.proc.resume()
    run.faults.paused(pids, began, time.monotonic())
    run.wait_done(ids, p.timeout)
    _settle(run)
    return run.judge()


def broker_stall(run: Run, stalls: int = 3) -> Outcome:
    """SIGSTOP redis-server for twice the lease while three workers run tasks, a few times over:
    nothing may run twice. (Whether a stalled worker's queued command at the moment Redis
    continues is a heartbeat or a recovery pass is chance, so one stall may not show a fault.)"""
    p = run.profile
    for name in ("a", "b", "c"):
        run.worker(name, 2)
    ids = {run.send("faults.work", [1.5]) for _ in range(12 * stalls)}
    for _ in range(stalls):
        deadline = time.monotonic() + 20
        while len(run.ledger().attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.7)
        began = time.monotonic()
        run.redis.pause()
        time.sleep(p.lease.seconds * 2)
        run.redis.resume()
        run.faults.paused(frozenset({run.redis.proc.pid}), began, time.monotonic())
        time.sleep(1.0)
    run.wait_done(ids, p.timeout)
    _settle(run)
    outcome = run.judge()
    outcome.bound(outcome.duplicates == 0, f"{outcome.duplicates} task(s) ran twice after a broker stall")
    return outcome


# How much an appendfsync-everysec server may lose when killed: Redis' docs say a second, and
# up to two when a fsync is slow.
EVERYSEC_LOSS = 2.0


def redis_restart(run: Run) -> Outcome:
    """kill -9 redis-server under load and start it again on the same append-only file; producers
    keep sending throughout (a send that fails is not acknowledged, so it may be missing; one
    that lost the server after sending is told OutcomeUnknown, so it may also have run). With
    appendfsync everysec the server comes back without its last writes: the acks among them
    are lost and those tasks run again (excused); with always, nothing may run twice."""
    p = run.profile
    run.worker("a", 2)
    run.worker("b", 2)
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            run.send("faults.work", [0.1])
            time.sleep(0.03)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    time.sleep(2.0)
    killed = time.monotonic()
    run.faults.note(killed)
    run.redis.restart(1.0, hard=True)
    if run.appendfsync == "everysec":
        run.faults.lost_writes.append((killed, EVERYSEC_LOSS))
    run.faults.note(time.monotonic())
    time.sleep(2.0)
    stop.set()
    producer.join(p.timeout)
    run.wait_done(set(run.producer.sent), p.timeout)
    _settle(run)
    maybe = {t for t, why in run.producer.failed.items() if why.startswith("OutcomeUnknown")}
    outcome = run.judge(raw=maybe)
    outcome.extra["sends refused"] = len(run.producer.failed)
    outcome.extra["refused as OutcomeUnknown"] = len(maybe)
    return outcome


class _QueueMaster:
    """The Sentinel set-up's face over a cluster, for the master of the battery's queue (the
    one the failover rows kill)."""

    KEY = "{celeriac:q:celery}"

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def master_port(self) -> int:
        return int(self.cluster.master_of(self.KEY))

    def server(self, port: int) -> Any:
        return self.cluster.server(port)

    def wait_promoted(self, old: int, timeout: float) -> int:
        return int(self.cluster.wait_promoted(old, self.KEY, timeout))

    def rejoin(self, old: int, new: int) -> None:
        self.cluster.rejoin(old)

    def wait_settled(self, timeout: float) -> int:
        return int(self.cluster.wait_settled(self.KEY, timeout))


def master_failover(run: Run, restart_after: float | None = None) -> Outcome:
    """kill -9 the Redis master (Sentinel; on a cluster, the master of the queue's slot) while
    ``failover_tasks`` flow through two workers: the Sentinels (the cluster) promote the replica,
    workers and producers find it by themselves, and the old master comes back as a replica (as a
    process manager restarts it). With ``restart_after`` the old
    master restarts in place, as a master, that many seconds after the kill: about when the
    Sentinels agree it is down. A send refused around the kill is not acknowledged, yet may run:
    one refused as NotReplicated is on the master, and one whose connection died with the master
    may have been written (and copied) before it died. Duplicates are reported, not failed: a
    fetch or an ack the replica never saw makes a task run again."""
    p = run.profile
    setup = run.sentinels if run.cluster is None else _QueueMaster(run.cluster)
    run.worker("a", 2)
    run.worker("b", 2)
    total = p.failover_tasks
    spacing = 4.0 / total  # the tasks flow over about 4 s plus the failover
    sent = threading.Event()
    begun: dict[str, float] = {}  # when each send began: one begun before the kill is no sign of recovery

    def produce() -> None:
        for i in range(total):
            began = time.monotonic()
            begun[run.send("faults.work", [0.005])] = began
            if i == total // 2:
                sent.set()
            time.sleep(spacing)
        sent.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    sent.wait(p.timeout)
    old = setup.master_port()
    killed = time.monotonic()
    setup.server(old).kill()
    run.faults.note(killed)
    if restart_after is None:
        new = setup.wait_promoted(old, timeout=30)
        promoted = time.monotonic()
        setup.rejoin(old, new)
    else:
        time.sleep(restart_after)
        setup.server(old).restart(0.0, hard=True)
        new = setup.wait_settled(timeout=30)
        promoted = time.monotonic()
        run.outcome.extra["failed over"] = new != old
    run.faults.note(time.monotonic())
    producer.join(p.timeout + 60)
    run.wait_done(set(run.producer.sent), p.timeout)
    _settle(run)
    maybe = set(run.producer.failed)
    outcome = run.judge(raw=maybe)
    outcome.failures = [f for f in outcome.failures if "duplicate execution" not in f]
    ledger = run.ledger()
    after = [a.end for t in run.producer.sent if begun.get(t, 0.0) > killed for a in ledger.attempts.get(t, ())
             if a.end is not None]
    outcome.extra["master settled after s"] = round(promoted - killed, 1)
    outcome.extra["work resumed after s"] = round(min(after) - killed, 1) if after else None
    outcome.extra["sends refused"] = len(run.producer.failed)
    outcome.extra["refused as NotReplicated"] = sum(why.startswith("NotReplicated")
                                                    for why in run.producer.failed.values())
    outcome.extra["refused, ran all the same"] = len(maybe & set(ledger.attempts))
    outcome.extra["left in broker"] = run.side.in_broker()
    outcome.restarts = run.births_after(killed)
    outcome.bound(outcome.restarts == 0, f"pool processes restarted {outcome.restarts} times (a crash loop?)")
    outcome.bound(all(k.proc is not None and k.proc.alive() for k in run.restarters), "a worker exited")
    return outcome


def poison(run: Run) -> Outcome:
    """Tasks that kill their own process (os._exit, os.abort, a segfault) among good ones: each is
    recorded as failed, every good task runs once."""
    p = run.profile
    run.worker("a", 2)
    run.worker("b", 2)
    crashing: set[str] = set()
    good: set[str] = set()
    for i in range(40):
        good.add(run.send("faults.work", [0.05]))
        if i % 13 == 6:
            crashing.add(run.send("faults.die", [("exit", "abort", "segv")[i // 13]]))
    run.faults.note(time.monotonic())
    run.wait_done(good | crashing, p.timeout, crashing)
    _settle(run)
    outcome = run.judge(crashing=crashing)
    outcome.extra["poison recorded as failed"] = sum(1 for t in crashing if run.side.result(t)[0] == "FAILURE")
    return outcome


MALFORMED: dict[str, bytes] = {
    "bad JSON": b"\x00\xff{not json",
    "bad UTF-8 in a string": b'{"id": "raw-utf8", "task": "faults.work", "args": [0, "\xff\xfe"]}',
    "nested 1,000 deep": (b'{"id": "raw-deep", "task": "faults.work", "args": [0, ' + b"[" * 1000 + b"]" * 1000
                          + b"]}"),
    "10 MB body": b'{"id": "raw-big", "task": "faults.work", "args": [0, "' + b"a" * (10 * 1024 * 1024) + b'"]}',
    "unknown task": b'{"id": "raw-unknown", "task": "faults.no_such_task", "args": []}',
    "args not a list": b'{"id": "raw-args", "task": "faults.work", "args": "not-a-list"}',
    "wrong argument type": b'{"id": "raw-type", "task": "faults.work", "args": ["soon"]}',
}


def malformed(run: Run) -> Outcome:
    """Raw bytes no producer would send, then good tasks: all good ones complete, the pool does not
    crash-loop, nothing is left stuck in the broker."""
    p = run.profile
    worker = run.worker("a", 2)
    time.sleep(0.5)
    before = time.monotonic()
    for payload in MALFORMED.values():
        run.side.push_raw(payload)
    run.faults.note(time.monotonic())
    good = {run.send("faults.work", [0.02]) for _ in range(30)}
    run.wait_done(good, p.timeout)
    time.sleep(3.0)
    outcome = run.judge(raw={"raw-utf8", "raw-deep", "raw-big", "raw-unknown", "raw-args", "raw-type"})
    restarts = run.births_after(before)
    outcome.restarts = restarts
    left = run.side.in_broker()
    outcome.extra["left in broker"] = left
    outcome.extra["dead-lettered"] = len(run.side.dead_letters())
    outcome.bound(restarts <= len(MALFORMED), f"pool processes crash-looped: {restarts} restarts for "
                                              f"{len(MALFORMED)} bad messages")
    outcome.bound(left == 0, f"{left} message(s) never handled (still in the broker)")
    outcome.bound(worker.proc is not None and worker.proc.alive(), "the worker exited")
    return outcome


def delayed_burst(run: Run, count: int | None = None) -> Outcome:
    """``count`` delayed tasks all due at one moment; a worker is killed mid-burst and restarted."""
    p = run.profile
    count = count or p.burst
    keepers = [run.worker("w1", 2), run.worker("w2", 2)]
    ids = [""] * count
    due = time.time() + 3.0
    run.producer.send(lambda: run.side.send_many("faults.work", [0], ids, due), "burst")
    run.producer.sent.pop("burst", None)
    if "burst" in run.producer.failed:
        run.outcome.error = run.producer.failed["burst"]
        return run.judge()
    now = time.monotonic()
    for task_id in ids:
        run.producer.sent[task_id] = now
    deadline = time.monotonic() + max(30.0, due - time.time() + 30)
    while len(run.ledger().attempts) < count // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.kill_and_restart(keepers[0])
    run.wait_done(set(ids), p.timeout)
    _settle(run)
    return run.judge()


def beats(run: Run) -> Outcome:
    """Three schedulers of a 1 s entry, one killed -9 and restarted every 3 s: each tick once."""
    p = run.profile
    run.worker("a", 2)
    keepers = []
    for i in range(3):
        def start(i: int = i) -> Proc:
            proc = run.side.beat(i)
            run.procs.append(proc)
            return proc.start()

        keepers.append(start)
    current = [start() for start in keepers]
    begun = time.monotonic()
    k = 0
    while time.monotonic() - begun < p.beat_seconds:
        time.sleep(3.0)
        run.faults.killed(current[k % 3].kill9())
        current[k % 3] = keepers[k % 3]()
        k += 1
    for proc in current:
        proc.stop(10)
    time.sleep(2.0)
    ticks = run.ledger().ticks
    outcome = run.outcome
    if ticks and all(t.startswith("~") for t in ticks):
        # Celery stamps no tick: count runs against the seconds the beats ran.
        seconds = int(p.beat_seconds)
        outcome.attempted = outcome.acknowledged = seconds
        outcome.duplicates = max(0, len(ticks) - seconds)
        outcome.lost = max(0, seconds - len(ticks))
    else:
        stamps = sorted({float(t) for t in ticks if t not in ("None", "manual")})
        expected = {round(stamps[0] + i, 3) for i in range(round(stamps[-1] - stamps[0]) + 1)} if stamps else set()
        outcome.attempted = outcome.acknowledged = len(expected)
        outcome.duplicates = len(ticks) - len(set(ticks))
        outcome.lost = len(expected - {round(s, 3) for s in stamps})
    outcome.unexcused = outcome.duplicates
    outcome.extra["ticks run"] = len(ticks)
    outcome.bound(outcome.attempted >= p.beat_seconds - 3, f"only {outcome.attempted} ticks in {p.beat_seconds:g} s")
    outcome.bound(outcome.lost == 0, f"{outcome.lost} tick(s) never sent")
    outcome.bound(outcome.duplicates == 0, f"{outcome.duplicates} tick(s) sent more than once")
    return outcome


def disk_full(run: Run) -> Outcome:
    """SQLite on a small tmpfs that fills up: sends fail loudly (not acknowledged), nothing
    acknowledged is lost, and the worker carries on once space is freed."""
    p = run.profile
    mount = Path(run.side.url.removeprefix("sqlite:///")).parent
    run.worker("a", 2)
    for _ in range(20):
        run.send("faults.work", [0.02])
    filler = mount / "filler"
    # Unbuffered, and the suppress outside the open: a buffered file's close flushes what the
    # full disk refused and raised ENOSPC past an inner suppress (the row "could not run").
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
        for _ in range(10_000):
            f.write(b"\0" * 65536)
    run.faults.note(time.monotonic())
    full_until = time.monotonic() + 4.0
    while time.monotonic() < full_until:
        run.send("faults.work", [0.02])
        time.sleep(0.02)
    filler.unlink()
    run.faults.note(time.monotonic())
    for _ in range(20):
        run.send("faults.work", [0.02])
    run.wait_done(set(run.producer.sent), p.timeout)
    _settle(run)
    outcome = run.judge()
    outcome.extra["sends refused while full"] = len(run.producer.failed)
    return outcome


@contextlib.contextmanager
def tmpfs(directory: Path, size: str = "24m") -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                          capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise PermissionError(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                              "the disk-full row needs root")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, timeout=10)


@dataclass(frozen=True)
class Row:
    name: str
    brokers: tuple[str, ...]        # where it applies: "redis", "sqlite", "sentinel", "cluster"
    run: Callable[[Run], Outcome]
    celery: bool = True             # does the row make sense on Celery
    appendfsync: str = "everysec"
    tmpfs: bool = False
    wait_replicas: int = 0          # Sentinel and Cluster rows: broker_transport_options wait_replicas


ROWS = [
    Row("kill -9 storm, same names", ("redis", "sqlite", "sentinel", "cluster"), kill_storm),
    Row("kill -9 storm, one worker, same name", ("redis", "sqlite", "sentinel", "cluster"),
        lambda r: kill_storm(r, workers=1)),
    Row("sqlite kill -9, 4 contending processes", ("sqlite",), lambda r: kill_storm(r, workers=4, concurrency=1),
        celery=False),
    Row("kill -9 with a prefetched backlog", ("redis", "sqlite", "sentinel", "cluster"), prefetched_backlog),
    Row("zombie worker (SIGSTOP past lease)", ("redis", "sqlite", "cluster"), zombie),
    Row("broker stall (SIGSTOP Redis 2x lease)", ("redis",), broker_stall),
    Row("redis kill -9, appendfsync everysec", ("redis",), redis_restart),
    Row("redis kill -9, appendfsync always", ("redis",), redis_restart, appendfsync="always"),
    Row("poison (_exit, abort, segfault)", ("redis", "sqlite", "cluster"), poison),
    Row("raw malformed input", ("redis", "sqlite", "cluster"), malformed),
    Row("delayed burst, worker killed", ("redis", "sqlite", "cluster"), delayed_burst),
    Row("three beats, kill -9", ("redis", "sqlite", "cluster"), beats),
    Row("sqlite disk full (tmpfs)", ("sqlite",), disk_full, celery=False, tmpfs=True),
    Row("sentinel master kill -9 under load", ("sentinel",), master_failover, celery=False),
    Row("sentinel master kill -9 under load, wait_replicas=1", ("sentinel",), master_failover, celery=False,
        wait_replicas=1),
    Row("sentinel master kill -9, restarted in 1 s", ("sentinel",), lambda r: master_failover(r, 1.0),
        celery=False),
    Row("sentinel master kill -9, restarted in 1 s, wait_replicas=1", ("sentinel",),
        lambda r: master_failover(r, 1.0), celery=False, wait_replicas=1),
    Row("cluster master kill -9 under load", ("cluster",), master_failover, celery=False),
    Row("cluster master kill -9 under load, wait_replicas=1", ("cluster",), master_failover, celery=False,
        wait_replicas=1),
    Row("cluster master kill -9, restarted in 1 s", ("cluster",), lambda r: master_failover(r, 1.0),
        celery=False),
    Row("cluster master kill -9, restarted in 1 s, wait_replicas=1", ("cluster",),
        lambda r: master_failover(r, 1.0), celery=False, wait_replicas=1),
]


def run_row(row: Row, kind: str, broker: str, profile: Profile, root: Path) -> Outcome:
    """Run one row on one side; whatever goes wrong is reported on the row, never raised."""
    with contextlib.ExitStack() as stack:
        sqlite_dir = None
        if row.tmpfs:
            try:
                sqlite_dir = stack.enter_context(tmpfs(root / f"tmpfs-{kind}-{broker}"))
            except (PermissionError, OSError, subprocess.SubprocessError) as exc:
                outcome = Outcome(row.name, f"{kind} {broker}", profile.lease.describe(kind))
                outcome.error = str(exc)
                return outcome
        run = Run(row.name, kind, broker, profile, root, appendfsync=row.appendfsync, sqlite_dir=sqlite_dir,
                  wait_replicas=row.wait_replicas)
        try:
            return row.run(run)
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            run.outcome.error = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"[:300]
            return run.outcome
        finally:
            run.close()
    raise AssertionError("unreachable")
