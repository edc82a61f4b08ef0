"""``celeriac migrate-from-celery``: a real Celery 5 producer and worker fill a private Redis,
the cut-over moves what waits there into celeriac, and a celeriac worker runs each task once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celery  # noqa: F401  (the dev extra; a missing one fails loudly)
import pytest

from celeriac import message

APPS = str(Path(__file__).parent.parent / "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)

from redis_server import RedisServer, start_redis  # noqa: E402

SEP = "\x06\x16"
# How far ahead the countdown tasks' etas are: past every step before the cut-over, which takes
# 10-15 s on a loaded machine (a Celery worker's start, three CLI runs); a 6 s eta had passed by
# then, so the task was rightly moved ready, not delayed. The moved ones are then made due at once.
AHEAD = 60.0


@pytest.fixture
def celery_redis() -> Iterator[RedisServer]:
    """The Celery broker: a redis-server of its own, apart from celeriac's."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def producer(celery_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CELERY_MIGRATE_BROKER", celery_redis.url)
    sys.modules.pop("celery_migrate", None)
    import celery_migrate

    yield celery_migrate.app
    celery_migrate.app.close()


def celery_client(server: RedisServer) -> Any:
    import redis

    return redis.Redis.from_url(server.url)


def migrate(celery_url: str, broker_url: str, *args: str, marks: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELERIAC_BROKER_URL": broker_url, "CELERIAC_TEST_DIR": str(marks),
           "PYTHONPATH": os.pathsep.join([APPS, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "celeriac", "-A", "migrateapp", "migrate-from-celery",
                           "--from", celery_url, *args], env=env, capture_output=True, text=True, timeout=120)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def hold_in_unacked(celery_redis: RedisServer, producer: Any, count: int, *, while_alive: Any = None) -> list[str]:
    """Countdown tasks a real Celery worker took (so they sit in ``unacked``), then kill -9;
    ``while_alive()`` runs before the kill."""
    ids = [producer.send_task("shop.record", args=["held", i], queue="held", countdown=AHEAD).id
           for i in range(count)]
    env = {**os.environ, "CELERY_MIGRATE_BROKER": celery_redis.url,
           "PYTHONPATH": os.pathsep.join([APPS, os.environ.get("PYTHONPATH", "")])}
    celery_bin = str(Path(sys.executable).with_name("celery"))
    proc = subprocess.Popen([celery_bin, "-A", "celery_migrate", "worker", "-Q", "held", "-P", "solo",
                             "--without-mingle", "--without-gossip", "-l", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = celery_client(celery_redis)
    try:
        wait_for(lambda: client.hlen("unacked") == count, 60, "the Celery worker to hold the countdown tasks")
        if while_alive is not None:
            while_alive()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert client.llen("held") == 0 and client.hlen("unacked") == count
    return ids


def ledger(marks: Path) -> list[dict[str, Any]]:
    path = marks / "ledger"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_cut_over_runs_every_waiting_celery_task_once_in_celeriac(
        celery_redis: RedisServer, producer: Any, redis_url: str, marks: Path, start_migrate_worker: Any) -> None:
    """Ready, priority, countdown (held unacked by a killed Celery worker), eta and expiring
    tasks move with their ids, arguments and root/parent ids; each runs exactly once; an
    expired one is recorded REVOKED; a pickled one stays in Celery; the dry run changes nothing."""
    def refused_while_celery_runs() -> None:
        refused = migrate(celery_redis.url, redis_url, marks=marks)
        assert refused.returncode == 1 and "still consume from" in refused.stderr, refused.stderr
        assert celery_client(celery_redis).hlen("unacked") == 3  # nothing moved

    held_eta = time.time() + AHEAD
    held = hold_in_unacked(celery_redis, producer, 3, while_alive=refused_while_celery_runs)
    sent: dict[str, tuple[list[Any], dict[str, Any]]] = {}

    def send(args: list[Any], kwargs: dict[str, Any] | None = None, **options: Any) -> str:
        task_id = producer.send_task("shop.record", args=args, kwargs=kwargs or {}, **options).id
        sent[task_id] = (args, kwargs or {})
        return str(task_id)

    for i in range(5):
        send(["ready", i], {"note": f"n{i}", "nested": {"list": [1, 2.5, None, True]}})
    by_priority = {p: send(["prio", p], queue="high", priority=p) for p in (0, 5, 9)}
    eta_at = time.time() + AHEAD
    eta_id = send(["eta"], countdown=AHEAD)
    send(["expires-later"], expires=300)
    expired_id = producer.send_task("shop.record", args=["expired"], expires=1).id
    pickled_id = producer.send_task("shop.record", args=["pickled"], serializer="pickle").id
    time.sleep(1.2)  # the expiring one is now past its time
    for i, task_id in enumerate(held):
        sent[task_id] = (["held", i], {})
    client = celery_client(celery_redis)
    before = (client.llen("celery"), client.hlen("unacked"))

    dry = migrate(celery_redis.url, redis_url, "--dry-run", marks=marks)
    assert dry.returncode == 0, dry.stderr
    assert "held: 0 ready, 3 unacked in Celery; would move 3" in dry.stdout, dry.stdout
    assert "high: 3 ready, 0 unacked in Celery; would move 3 (priority 0: 1, 5: 1, 9: 1)" in dry.stdout
    assert "celery: 9 ready, 0 unacked in Celery; would move 8" in dry.stdout, dry.stdout
    assert "1 left in Celery: arguments are pickled" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    only_high = migrate(celery_redis.url, redis_url, "--dry-run", "-Q", "high", marks=marks)
    assert [line.split(":")[0] for line in only_high.stdout.splitlines() if not line.startswith(" ")] == [
        "high", "dry run"], only_high.stdout
    assert (client.llen("celery"), client.hlen("unacked")) == before
    import migrateapp

    migrateapp.app.conf.broker_url = redis_url
    migrateapp.app._reset_connections()
    try:
        assert sum(s.ready_total + s.delayed for s in migrateapp.app.broker.stats(["celery", "held", "high"])) == 0

        run = migrate(celery_redis.url, redis_url, marks=marks)
        assert run.returncode == 0, run.stderr
        held_line = "held: 0 ready, 3 unacked in Celery; moved 3 (priority 0: 3), 3 with an eta ahead"
        assert held_line in run.stdout, run.stdout
        assert "1 already expired" in run.stdout
        # Celery keeps only what was refused; its journal keeps no loose ends.
        assert client.hlen("unacked") == 0 and client.llen("held") == 0
        assert [json.loads(m)["headers"]["id"] for m in client.lrange("celery", 0, -1)] == [pickled_id]
        assert client.hlen("celeriac-migrate:copying") == 0 and client.hlen("celeriac-migrate:releasing") == 0
        stats = {s.name: s for s in migrateapp.app.broker.stats(["celery", "held", "high"])}
        assert stats["high"].ready == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]  # Celery's numbers, read as celeriac's
        assert stats["held"].delayed == 3 and stats["celery"].delayed == 1  # due at their own times
        scheduled = migrateapp.app.broker.scheduled(["celery", "held"])
        assert {s.key for s in scheduled} == {*held, eta_id}
        etas = {eta_id: eta_at, **{key: held_eta for key in held}}
        assert all(abs(s.due - etas[s.key]) < 3.0 for s in scheduled), [(s.key, s.due, etas[s.key]) for s in scheduled]
        assert message.decode(next(s.body for s in scheduled if s.key == eta_id)).eta is not None
        for s in scheduled:  # due now: that they wait for their eta is proven; that they run once is next
            assert migrateapp.app.broker.reschedule(s.queue, s.key, 0)

        start_migrate_worker()
        expected = set(sent)
        wait_for(lambda: {r["id"] for r in ledger(marks)} >= expected, 60, "every moved task to run")
        # Counted once nothing is left to run: a copy moved twice has run by then, however slow.
        wait_for(lambda: not any(s.ready_total or s.delayed or s.unacked
                                 for s in migrateapp.app.broker.stats(["celery", "held", "high"])),
                 30, "the moved tasks to be done")
        runs = ledger(marks)
        assert Counter(r["id"] for r in runs) == Counter(expected)
        for record in runs:
            args, kwargs = sent[record["id"]]
            assert (record["args"], record["kwargs"]) == (args, kwargs)
            assert record["root_id"] == record["id"]  # Celery's root id travelled
        assert pickled_id not in {r["id"] for r in runs}
        wait_for(lambda: migrateapp.app.AsyncResult(expired_id).state == "REVOKED", 20, "the expired task's state")
        assert by_priority  # (ids checked through the ledger above)
    finally:
        migrateapp.app.close()


@pytest.fixture
def start_migrate_worker(redis_url: str, marks: Path) -> Iterator[Any]:
    from celeriac.testing import worker_process

    started: list[Any] = []

    def start() -> Any:
        proc = worker_process("migrateapp", "-Q", "celery,held,high", "-c", "2", broker_url=redis_url,
                              env={"CELERIAC_TEST_DIR": str(marks)}, pythonpath=[APPS])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def test_live_celery_consumers_stop_the_cut_over_unless_forced(
        celery_redis: RedisServer, redis_url: str, marks: Path) -> None:
    """A client blocked in BRPOP on the Celery Redis (a live worker) makes the run refuse."""
    from redis import Connection

    blocker = Connection(port=celery_redis.port)
    blocker.send_command("BRPOP", "celery", 0)  # blocks on the server; its reply is never read
    time.sleep(0.3)
    refused = migrate(celery_redis.url, redis_url, marks=marks)
    assert refused.returncode != 0
    assert "still consume from" in refused.stderr and "--force" in refused.stderr, refused.stderr
    forced = migrate(celery_redis.url, redis_url, "--force", marks=marks)
    assert forced.returncode == 0, forced.stderr
    assert "no Celery queues found" in forced.stdout
    blocker.disconnect()


def test_pickle_is_refused_unless_accepted(celery_redis: RedisServer, producer: Any, redis_url: str,
                                           marks: Path) -> None:
    """A pickled message stays in Celery with a line saying why; --accept-pickle moves it."""
    task_id = producer.send_task("shop.record", args=["p"], serializer="pickle").id
    first = migrate(celery_redis.url, redis_url, marks=marks)
    assert "celery: 1 ready, 0 unacked in Celery; moved 0" in first.stdout, first.stdout
    assert "--accept-pickle" in first.stdout
    second = migrate(celery_redis.url, redis_url, "--accept-pickle", marks=marks)
    assert "moved 1" in second.stdout, second.stdout
    import migrateapp

    migrateapp.app.conf.broker_url = redis_url
    migrateapp.app._reset_connections()
    try:
        migrateapp.app.broker.promote(["celery"])
        got = migrateapp.app.broker.fetch(["celery"], "t#1/1", 10, 1.0)
        assert [message.decode(d.body).id for d in got] == [task_id]
        assert message.decode(got[0].body).args == ["p"]
    finally:
        migrateapp.app.close()




def fill(producer: Any, count: int) -> list[str]:
    with producer.producer_or_acquire() as pub:
        return [producer.send_task("shop.record", args=["bulk", i], producer=pub).id for i in range(count)]


def held_in_celeriac(app: Any, queue: str) -> list[str]:
    """Ids celeriac holds as delayed far beyond any real eta (copies not yet released)."""
    return [s.key for s in app.broker.scheduled([queue], limit=100_000) if s.due > time.time() + 86400]


def drained_ids(app: Any, queue: str) -> Counter[str]:
    app.broker.promote([queue])
    ids: Counter[str] = Counter()
    for _ in range(100):
        got = app.broker.fetch([queue], "t#1/1", 500, 0.2)
        if not got:
            break
        ids.update(message.decode(d.body).id for d in got)
        app.broker.ack(got)
    return ids


@pytest.fixture(params=["redis", "sqlite"])
def celeriac_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The celeriac side of the in-process tests, on each broker whose delayed messages the
    mover holds and releases (Redis and SQLite)."""
    import migrateapp

    url = str(request.getfixturevalue("redis_url")) if request.param == "redis" else f"sqlite:///{tmp_path}/c.db"
    migrateapp.app.conf.broker_url = url
    migrateapp.app._reset_connections()
    yield migrateapp.app
    migrateapp.app.close()


class Interrupt(Exception):
    pass


def test_a_run_stopped_after_copy_or_after_commit_is_finished_by_the_next_without_duplicates(
        celery_redis: RedisServer, producer: Any, celeriac_app: Any) -> None:
    """Stopped between copy and commit (the message is in both brokers), then between commit
    and release (only celeriac holds it, not yet runnable): the next run finishes both and
    every task is in celeriac exactly once, none left held."""
    from celeriac.migration.mover import COPYING, RELEASING, Mover
    from celeriac.migration.source import CelerySource

    ids = fill(producer, 10)
    source = CelerySource(celery_redis.url)
    client = celery_client(celery_redis)
    try:
        for stop_at, nth in (("copied", 3), ("committed", 2)):
            mover, seen = Mover(source, celeriac_app), Counter[str]()

            def step(name: str, stop_at: str = stop_at, nth: int = nth, seen: Counter[str] = seen) -> None:
                seen[name] += 1
                if name == stop_at and seen[name] == nth:
                    raise Interrupt(name)

            mover.after_step = step
            with pytest.raises(Interrupt):
                mover.run(["celery"])
            journal = COPYING if stop_at == "copied" else RELEASING
            assert client.hlen(journal) == 1
            assert len(held_in_celeriac(celeriac_app, "celery")) == 1  # a copy no worker can run yet
        # First run: two moved, the third copied only; second: that third and a fourth committed.
        assert client.llen("celery") == 10 - 4
        Mover(source, celeriac_app).run(["celery"])
    finally:
        source.close()
    assert client.llen("celery") == 0 and client.hlen(COPYING) == 0 and client.hlen(RELEASING) == 0
    assert held_in_celeriac(celeriac_app, "celery") == []
    assert drained_ids(celeriac_app, "celery") == Counter(ids)


def test_a_run_killed_midway_is_finished_by_the_next_without_duplicates(
        celery_redis: RedisServer, producer: Any, marks: Path, celeriac_app: Any) -> None:
    """kill -9 of the CLI in the middle of a run, then a re-run (which takes over the dead
    run's lock at once): every task in celeriac exactly once, nothing left in Celery."""
    ids = fill(producer, 1500)
    redis_url = celeriac_app.conf.broker_url
    env = {**os.environ, "CELERIAC_BROKER_URL": redis_url,
           "PYTHONPATH": os.pathsep.join([APPS, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "migrateapp", "migrate-from-celery",
                             "--from", celery_redis.url], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    client = celery_client(celery_redis)
    try:
        wait_for(lambda: client.scard("celeriac-migrate:done") >= 100 or proc.poll() is not None, 60,
                 "the run to move a hundred")
    finally:
        proc.kill()
        proc.wait(10)
    left = client.llen("celery")
    assert 0 < left < 1500, "the run was not stopped midway; the test proves nothing"
    rerun = migrate(celery_redis.url, redis_url, marks=marks)
    assert rerun.returncode == 0, rerun.stderr
    assert client.llen("celery") == 0
    assert held_in_celeriac(celeriac_app, "celery") == []
    assert drained_ids(celeriac_app, "celery") == Counter(ids)


def test_a_message_a_celery_worker_takes_meanwhile_stays_celerys_and_a_restored_one_is_not_copied_twice(
        celery_redis: RedisServer, producer: Any, celeriac_app: Any) -> None:
    """A message taken from Celery between the copy and the commit (a Celery worker still ran)
    is left to Celery and its held copy dropped; a moved message that a Celery worker later
    restores to its list (kombu's restore of unacked messages) is removed, not copied again."""
    from celeriac.migration.mover import Mover
    from celeriac.migration.source import CelerySource

    ids = fill(producer, 3)  # the oldest (ids[0]) is at the tail
    client = celery_client(celery_redis)
    raws = client.lrange("celery", 0, -1)
    source = CelerySource(celery_redis.url)
    try:
        mover = Mover(source, celeriac_app)
        taken: list[bytes] = []

        def celery_worker_takes_it(step: str) -> None:
            if step == "copied" and not taken:
                taken.append(client.rpop("celery"))

        mover.after_step = celery_worker_takes_it
        [report] = mover.run(["celery"])
        assert (report.moved, report.taken) == (2, 1)
        assert held_in_celeriac(celeriac_app, "celery") == []
        client.rpush("celery", raws[0])  # kombu restores a moved message to the list's tail
        [again] = Mover(source, celeriac_app).run(["celery"])
        assert (again.moved, again.already_moved) == (0, 1)
    finally:
        source.close()
    assert client.llen("celery") == 0
    assert drained_ids(celeriac_app, "celery") == Counter(ids[1:])


def test_a_message_larger_than_workers_accept_stays_in_celery(
        celery_redis: RedisServer, producer: Any, celeriac_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers would dead-letter a message over task_message_max_bytes unread; the cut-over
    leaves it in Celery with the reason instead."""
    from celeriac.migration.mover import Mover
    from celeriac.migration.source import CelerySource

    producer.send_task("shop.record", args=["x" * 5000])
    monkeypatch.setitem(celeriac_app.conf, "task_message_max_bytes", 2000)
    source = CelerySource(celery_redis.url)
    try:
        [report] = Mover(source, celeriac_app).run(["celery"])
    finally:
        source.close()
    assert report.moved == 0 and "larger than task_message_max_bytes" in " ".join(report.refused)
    assert celery_client(celery_redis).llen("celery") == 1
    assert drained_ids(celeriac_app, "celery") == Counter()
