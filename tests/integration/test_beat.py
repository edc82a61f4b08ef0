"""Beat, run as users run it: ``celeriac beat`` and ``celeriac worker -B`` processes on Redis and SQLite.

Every periodic run records the tick beat stamped on its message (``tests/apps/beatapp.py``), so
the tests count runs per tick, not per time window: a duplicate or a missing tick shows as such
however slow the machine is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from celeriac import Celery, message
from celeriac.beat import Schedule
from celeriac.beat.store import BeatStore
from celeriac.brokers import from_url
from celeriac.brokers.base import Broker
from celeriac.exceptions import ConfigurationError
from celeriac.schedules import crontab, schedule
from celeriac.testing import WorkerProcess, wait_until

APPS = str(Path(__file__).parent.parent / "apps")

Records = Callable[[str], list[float | None]]


@pytest.fixture(params=["redis", "sqlite"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path}/b.db"


@pytest.fixture
def broker(broker_url: str) -> Iterator[Broker]:
    made = from_url(broker_url)
    yield made
    made.close()


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    return tmp_path / "runs.txt"


@pytest.fixture
def records(record_file: Path) -> Records:
    """``records(entry)``: the ticks of every run of ``entry`` so far (None for run-now)."""
    def read(entry: str) -> list[float | None]:
        if not record_file.exists():
            return []
        out: list[float | None] = []
        for line in record_file.read_text().splitlines():
            name, tick, _pid = line.split()
            if name == entry:
                out.append(None if tick == "manual" else float(tick))
        return out

    return read


@pytest.fixture
def start(broker_url: str, record_file: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start(scenario, 'beat', ...)``: run ``celeriac -A beatapp ...``; all are stopped at the end."""
    started: list[WorkerProcess] = []

    def run(scenario: str, *args: str) -> WorkerProcess:
        env = {**os.environ, "CELERIAC_BROKER_URL": broker_url, "BEATAPP_SCENARIO": scenario,
               "BEATAPP_RECORD": str(record_file), "PYTHONPATH": APPS}
        log = str(tmp_path / f"{len(started)}-{args[0]}.log")
        proc = WorkerProcess(["-A", "beatapp", *args, "-l", "info"], env, log).start()
        started.append(proc)
        return proc

    try:
        yield run
    finally:
        for proc in started:  # all at once: each shuts down while the others do
            if proc.proc is not None and proc.proc.poll() is None:
                # Workers get a cold shutdown: their tasks are instant and their shutdown is not under test.
                proc.proc.send_signal(signal.SIGQUIT if "worker" in proc.args else signal.SIGTERM)
        for proc in started:
            assert proc.proc is not None
            try:
                proc.proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if os.environ.get("CELERIAC_TEST_SHOW_LOGS"):
                print(proc.log())


def wait_started(proc: WorkerProcess, timeout: float = 15.0) -> None:
    def up() -> bool:
        assert proc.proc is not None
        if proc.proc.poll() is not None:
            raise AssertionError(f"exited with {proc.proc.returncode}:\n{proc.log()[-3000:]}")
        return "beat: Starting" in proc.log()

    wait_until(up, timeout, interval=0.05, message="beat started")


def test_each_tick_is_enqueued_once_with_two_beats_and_a_worker_B(start, broker, records) -> None:
    """Promise 5: three schedulers (two ``beat``, one ``worker -B``) send each tick exactly once."""
    worker = start("ticks", "worker", "-B", "-c", "2", "-n", "wb@%h")
    beats = [start("ticks", "beat"), start("ticks", "beat")]
    worker.wait_ready(20)
    for proc in [worker, *beats]:
        wait_started(proc)
    all_up = broker.now()
    wait_until(lambda: any(t is not None and t >= all_up + 4 for t in records("every-second")), 15,
               message="four ticks after every scheduler was up")
    time.sleep(0.5)  # let the worker finish the runs in flight
    ticks = [t for t in records("every-second") if t is not None]
    doubled = {t: n for t, n in Counter(ticks).items() if n > 1}
    assert not doubled, f"ticks sent more than once: {doubled}"
    window = [t for t in ticks if all_up + 1 <= t <= all_up + 4]
    assert len(window) >= 3 and sorted(window) == [window[0] + i for i in range(len(window))], \
        f"a tick is missing between {all_up + 1} and {all_up + 4}: {sorted(window)}"
    sends = sum(p.log().count("Sending due task every-second") for p in [worker, *beats])
    assert sends >= len(ticks) and sends <= len(ticks) + 3, (sends, len(ticks))  # a few may be in flight


def test_catch_up_policy_after_every_beat_was_killed(start, broker, records) -> None:
    """Runs missed while no scheduler ran: ``missed='once'`` sends exactly one, ``'skip'`` none."""
    start("catch-up", "worker", "-c", "2", "-n", "wc@%h").wait_ready(20)
    args = ("beat", "--max-interval", "0.25")  # so ticks older than 1.25 s before start count as missed
    first = start("catch-up", *args)
    wait_started(first)
    store = BeatStore(broker)
    wait_until(lambda: store.last("catch-up-once") and store.last("catch-up-skip"), 10, message="entries seen")
    first.kill()  # SIGKILL: no goodbye
    seen = {name: store.last(name).tick for name in ("catch-up-once", "catch-up-skip")}  # type: ignore[union-attr]
    every = schedule(5.0)
    # Restart 1.5 s after the second missed tick: past the grace, and 3.5 s before the next tick
    # (the restarted beat must be running by then, on a loaded machine too).
    second_missed = every.next_after(max(seen.values())) + 5.0
    wait_until(lambda: broker.now() >= second_missed + 1.5, 20, interval=0.05, message="two ticks missed")
    restarted_at = broker.now()
    assert restarted_at < second_missed + 2.0, "the test machine stalled; the catch-up window was overrun"
    missed = {name: every.count_between(tick, restarted_at) for name, tick in seen.items()}
    second = start("catch-up", *args)
    wait_started(second)
    wait_until(lambda: any(t is not None and t > restarted_at for t in records("catch-up-skip"))
               and any(t is not None and t > restarted_at for t in records("catch-up-once")),
               20, message="regular ticks after the restart")
    once = [t for t in records("catch-up-once") if t is not None and seen["catch-up-once"] < t <= restarted_at]
    skip = [t for t in records("catch-up-skip") if t is not None and seen["catch-up-skip"] < t <= restarted_at]
    assert once == [second_missed], f"missed='once' should run once, for the latest missed tick: {once}"
    assert skip == [], f"missed='skip' should run none of the missed ticks: {skip}"
    log = second.log()
    assert f"catch-up-once missed {missed['catch-up-once']} runs while no scheduler was running; " \
           "sending one now" in log, log
    assert f"catch-up-skip missed {missed['catch-up-skip']} runs while no scheduler was running; " \
           "skipping" in log, log
    log = second.log()
    assert "catch-up-once missed 2 runs while no scheduler was running; sending one now" in log, log
    assert "catch-up-skip missed 2 runs while no scheduler was running; skipping" in log, log


def test_run_time_add_pause_run_now_resume_seen_by_running_beat(start, broker, broker_url, records) -> None:
    """Changes made through ``Schedule`` reach a running beat within a second or two."""
    start("runtime", "worker", "-c", "2", "-n", "wr@%h").wait_ready(20)
    wait_started(start("runtime", "beat"))
    app = Celery("beatapp", broker=broker_url, set_as_current=False)
    try:
        plan = Schedule(app)
        added_at = broker.now()
        plan.add("dyn", "beatapp.record", 1.0, args=["dyn"])
        wait_until(lambda: records("dyn"), 5, message="the added entry runs")
        assert min(t for t in records("dyn") if t is not None) <= added_at + 3, "the add took too long to be seen"

        plan.pause("dyn")
        paused_at = broker.now()
        time.sleep(2.5)
        late = [t for t in records("dyn") if t is not None and t > paused_at + 1.5]
        assert late == [], f"ticks sent after the pause was seen: {late}"

        result = plan.run_now("dyn")
        wait_until(lambda: None in records("dyn"), 5, message="run-now ran")
        assert result.id and len(result.id) == 36

        resumed_at = broker.now()
        plan.resume("dyn")
        wait_until(lambda: any(t is not None and t > resumed_at for t in records("dyn")), 5,
                   message="the resumed entry runs again")
        gap = [t for t in records("dyn") if t is not None and paused_at + 1.5 < t <= resumed_at]
        assert gap == [], f"ticks of the paused stretch were caught up: {gap}"
        ticks = [t for t in records("dyn") if t is not None]
        assert len(ticks) == len(set(ticks))
    finally:
        app.close()


# -- the Python API on the in-process memory broker (no processes needed) -----------------------

@pytest.fixture
def memory_app(request: pytest.FixtureRequest) -> Iterator[Celery]:
    app = Celery("beatapi", broker=f"memory://beat-{request.node.name}", set_as_current=False)
    app.conf.timezone = "Europe/Moscow"
    app.conf.beat_schedule = {
        "cleanup-old-carts": {"task": "store.tasks.cleanup_old_carts", "schedule": crontab(hour=3, minute=0)},
    }
    yield app
    app.close()


def test_code_entries_cannot_be_removed_only_paused(memory_app: Celery) -> None:
    plan = Schedule(memory_app)
    with pytest.raises(ConfigurationError, match=r"declared in code.*pause it"):
        plan.remove("cleanup-old-carts")
    plan.pause("cleanup-old-carts")
    assert plan.get("cleanup-old-carts").paused
    plan.resume("cleanup-old-carts")
    assert not plan.get("cleanup-old-carts").paused


def test_a_run_time_entry_replaces_a_code_entry_until_removed(memory_app: Celery) -> None:
    plan = Schedule(memory_app)
    plan.add("cleanup-old-carts", "store.tasks.cleanup_old_carts", crontab(hour=4, minute=30),
             options={"queue": "light"}, missed="skip")
    entry = plan.get("cleanup-old-carts")
    assert (entry.source, entry.schedule.human(), entry.missed) == ("runtime", "at 04:30 every day", "skip")
    assert [d.strftime("%H:%M %Z") for d in plan.next_runs("cleanup-old-carts", 2)] == ["04:30 MSK"] * 2
    plan.remove("cleanup-old-carts")
    assert plan.get("cleanup-old-carts").source == "code"


def test_unknown_names_and_bad_entries_get_one_line_errors(memory_app: Celery) -> None:
    plan = Schedule(memory_app)
    with pytest.raises(ConfigurationError, match=r"no beat entry named 'cleanup-old-cart' \(did you mean"):
        plan.pause("cleanup-old-cart")
    with pytest.raises(ConfigurationError, match=r"beat_schedule\['x'\]: 'missed' must be 'once' or 'skip'"):
        plan.add("x", "t", 10, missed="twice")
    with pytest.raises(ConfigurationError, match="must be JSON"):
        plan.add("x", "t", 10, args=[object()])
    assert "x" not in plan.entries()


def test_run_now_sends_with_the_entry_options(memory_app: Celery) -> None:
    plan = Schedule(memory_app)
    plan.add("reader", "app.tasks.close_abandoned_sessions", 1800.0, options={"queue": "light", "priority": 2})
    plan.pause("reader")
    result = plan.run_now("reader")
    [delivery] = memory_app.broker.fetch(["light"], "t/1", 10, 0)
    assert delivery.priority == 2
    envelope = message.decode(delivery.body)
    assert envelope.id == result.id
    assert envelope.headers["periodic_task_name"] == "reader" and envelope.headers["periodic_task_tick"] is None


def test_beat_list_shows_entries_in_words_with_next_runs(broker_url: str) -> None:
    env = {**os.environ, "CELERIAC_BROKER_URL": broker_url, "BEATAPP_SCENARIO": "catch-up", "PYTHONPATH": APPS}
    out = subprocess.run([sys.executable, "-m", "celeriac", "-A", "beatapp", "beat", "--list", "--next", "2"],
                         env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert "catch-up-once" in out.stdout and "catch-up-skip" in out.stdout
    assert "every 5 seconds" in out.stdout and "skip" in out.stdout


def test_beat_survives_a_broker_restart(tmp_path: Path, record_file: Path) -> None:
    """Redis goes away for a few seconds: beat logs it, retries, and carries on sending once per tick."""
    import shutil

    from redis_server import free_port

    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    data = tmp_path / "redis"
    data.mkdir()
    server_args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "",
                   "--appendonly", "yes", "--protected-mode", "yes", "--loglevel", "warning"]

    def serve() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(server_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = from_url(url)
        try:
            wait_until(lambda: _answers(probe), 10, interval=0.05, message="redis-server up")
        finally:
            probe.close()
        return proc

    server = serve()
    env = {**os.environ, "CELERIAC_BROKER_URL": url, "BEATAPP_SCENARIO": "ticks", "PYTHONPATH": APPS}
    beat = WorkerProcess(["-A", "beatapp", "beat", "-l", "info"], env, str(tmp_path / "beat.log")).start()
    try:
        wait_started(beat)
        wait_until(lambda: beat.log().count("Sending due task") >= 2, 10, message="beat sending")
        server.kill()
        server.wait(10)
        wait_until(lambda: "broker unavailable" in beat.log(), 10, message="beat noticed the outage")
        time.sleep(1.5)
        server = serve()
        before = beat.log().count("Sending due task")
        wait_until(lambda: beat.log().count("Sending due task") >= before + 2, 15, message="beat sending again")
        assert beat.proc is not None and beat.proc.poll() is None
        assert "broker reachable again" in beat.log()
        broker = from_url(url)
        try:
            ticks = []
            while deliveries := broker.fetch(["celery"], "probe/1", 100, 0):
                ticks += [message.decode(d.body).headers["periodic_task_tick"] for d in deliveries]
                broker.ack(deliveries)
        finally:
            broker.close()
        assert ticks and len(ticks) == len(set(ticks)), sorted(ticks)
    finally:
        beat.stop(10)
        if server.poll() is None:
            server.terminate()
            server.wait(10)


def _answers(broker: Broker) -> bool:
    try:
        broker.now()
        return True
    except Exception:
        return False
