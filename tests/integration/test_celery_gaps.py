"""Celery names that were missing, with real workers on the embedded SQLite broker: the worker
options Celery ops scripts pass (--discard, --include, --heartbeat-interval, --disable-prefetch,
--pool-start-method, -S, -O), the global -q/--no-color/--skip-checks, beat --hostname, and the
remote commands enable_events/disable_events, autoscale and inspect report."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_control import blocks, control_workers, node, ok, read_log, run_cli

from celeriac import states
from celeriac.events import EVENT_LOG
from celeriac.testing import WorkerProcess, wait_for, wait_until
from conftest import APPS, read_marks


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/gaps.db"


@pytest.fixture
def start(broker_url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    yield from control_workers(broker_url, marks, tmp_path)


def _usage_error(out: subprocess.CompletedProcess[str]) -> str:
    """The ``Error:`` line of a refused command line (click prints usage above it)."""
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    return [line for line in out.stderr.splitlines() if line.startswith("Error:")][-1]


def _events_for(app, task_id: str) -> list[str]:
    return [e["type"] for _, e in read_log(app.broker, EVENT_LOG) if e.get("uuid") == task_id]


# -- remote control ------------------------------------------------------------------------------
def test_disable_events_stops_task_events_in_pool_processes_until_enable_events(app, start, broker_url):
    import coreapp

    start("-c", "1", name="ev")
    first = coreapp.noop.delay()
    wait_for(first, 20)
    wait_until(lambda: "task-succeeded" in _events_for(app, first.id), 10, 0.1, message="events of a task")

    out = ok(run_cli(broker_url, "control", "disable_events", "-t", "5"))
    assert blocks(out) == {f"{node('ev')}: OK": ["task events disabled"]}
    again = app.control.disable_events(reply=True, timeout=5)
    assert again == [{node("ev"): {"ok": "task events already disabled"}}]
    quiet = coreapp.noop.delay()
    wait_for(quiet, 20)
    lost = coreapp.crash.delay()  # its process dies: the supervisor records it, and sends no event either
    assert type(wait_for(lost, 30, propagate=False)).__name__ == "WorkerLostError"
    # The supervisor stores the failure, decides on its event, then acks: once nothing is
    # leased it has decided, and turning events back on cannot reach back to it.
    wait_until(lambda: app.broker.stats(["celery"])[0].unacked == 0, 10, 0.05, message="the lost task acked")

    assert app.control.enable_events(reply=True, timeout=5) == [{node("ev"): {"ok": "task events enabled"}}]
    loud = coreapp.noop.delay()
    wait_for(loud, 20)
    wait_until(lambda: "task-succeeded" in _events_for(app, loud.id), 10, 0.1, message="events after enable")
    # One process flushes its events in order: the later task's are in, so the quiet one's would be.
    assert [k for k in _events_for(app, quiet.id) if k != "task-sent"] == []
    assert [k for k in _events_for(app, lost.id) if k != "task-sent"] == []
    # Worker events are not task events: the heartbeat keeps flowing while task events are off.
    assert any(e["type"] == "worker-heartbeat" for _, e in read_log(app.broker, EVENT_LOG))


def test_autoscale_moves_the_bounds_and_the_pool_and_refuses_without_autoscale(app, start, broker_url):
    start("--autoscale", "3,1", name="auto")
    start("-c", "1", name="fixed")

    def processes() -> int:
        stats = app.control.inspect(destination=[node("auto")], timeout=5).stats() or {}
        return len(stats.get(node("auto"), {}).get("pool", {}).get("processes", []))

    assert processes() == 1
    replies = app.control.autoscale(3, 2, destination=[node("auto")], reply=True, timeout=5)
    assert replies == [{node("auto"): {"ok": "autoscale now max=3 min=2"}}]
    wait_until(lambda: processes() == 2, 20, 0.3, message="the pool grown to the new minimum")

    out = ok(run_cli(broker_url, "control", "autoscale", "1", "1", "-d", node("auto"), "-t", "5"))
    assert blocks(out) == {f"{node('auto')}: OK": ["autoscale now max=1 min=1"]}
    wait_until(lambda: processes() == 1, 20, 0.3, message="the pool shrunk to the new maximum")

    [reply] = app.control.autoscale(4, 1, destination=[node("fixed")], reply=True, timeout=5)
    assert "Autoscale not enabled" in reply[node("fixed")]["error"]


def test_inspect_report_is_each_workers_bug_report_with_secrets_hidden(app, start, broker_url):
    start("-c", "1", name="rep", env={"CELERIAC_TEST_RESULT_BACKEND": "redis://:s3cret@127.0.0.1:1/0"})
    [text] = (app.control.inspect(timeout=5).report() or {}).values()
    assert text["ok"].startswith("software -> celeriac:")
    assert "s3cret" not in text["ok"] and "redis://:***@127.0.0.1:1/0" in text["ok"]
    out = ok(run_cli(broker_url, "inspect", "report", "-t", "5"))
    assert f"-> {node('rep')}: OK" in out and "software -> celeriac:" in out


# -- worker options ------------------------------------------------------------------------------
def test_discard_purges_the_workers_queues_before_it_starts_without_asking(app, start, marks):
    import coreapp

    waiting = [coreapp.record.apply_async((f"old{i}",), queue="gone") for i in range(3)]
    other = coreapp.record.apply_async(("kept",), queue="elsewhere")
    worker = start("-Q", "gone", "-c", "1", "--discard", name="disc")
    assert "purge: Erased 3 messages from gone." in worker.log()
    fresh = coreapp.record.apply_async(("new",), queue="gone")
    assert wait_for(fresh, 20) == "new"
    assert [line.split()[0] for line in read_marks(marks, "record")] == ["new"]
    assert all(r.state == states.PENDING for r in waiting)
    assert app.broker.purge(["elsewhere"]) == 1 and other.state == states.PENDING  # other queues untouched


def test_include_imports_more_task_modules_and_names_a_bad_one(app, start, broker_url, tmp_path):
    start("-c", "1", "-I", "includedtasks", name="inc")
    assert app.send_task("includedtasks.double", (21,)).get(timeout=20) == 42
    out = run_cli(broker_url, "worker", "-I", "no_such_module_here", timeout=60)
    assert out.returncode == 2
    assert "--include" in out.stderr and "cannot import 'no_such_module_here'" in out.stderr
    assert "Traceback" not in out.stderr


def test_disable_prefetch_leases_one_task_per_process(app, start):
    start("-c", "2", "--disable-prefetch", name="nopf")
    start("-c", "2", name="pf")
    stats = app.control.inspect(timeout=5).stats() or {}
    assert stats[node("nopf")]["prefetch_count"] == 2
    assert stats[node("pf")]["prefetch_count"] == 2 * app.conf.worker_prefetch_multiplier > 2


def test_heartbeat_interval_sets_how_often_the_worker_heartbeats(app, start):
    start("-c", "1", "--heartbeat-interval", "0.2", name="hb")

    def beats() -> list[float]:
        return [e["timestamp"] for _, e in read_log(app.broker, EVENT_LOG)
                if e["type"] == "worker-heartbeat" and e.get("hostname") == node("hb")]

    time.sleep(2.5)
    stamps = beats()
    assert len(stamps) >= 6, stamps  # the default (1 s) would give two or three


def test_options_refused_or_accepted_as_celery_ops_scripts_pass_them(app, start, broker_url):
    line = _usage_error(run_cli(broker_url, "worker", "--pool-start-method", "spawn"))
    assert line == "Error: Invalid value for --pool-start-method: celeriac forks its pool processes; " \
                   "spawn is not offered (use fork)"
    assert "--scheduler django_celery_beat" in _usage_error(
        run_cli(broker_url, "worker", "-B", "-S", "django_celery_beat.schedulers:DatabaseScheduler"))
    assert "'slow' is not one of 'default', 'fair'" in _usage_error(run_cli(broker_url, "worker", "-O", "slow"))
    worker = start("-c", "1", "--pool-start-method", "fork", "--optimization", "fair", name="ok")
    assert "-O fair: ignored" in worker.log()


def test_global_quiet_no_color_and_skip_checks(app, broker_url, marks, tmp_path):
    import coreapp

    env = {**os.environ, "CELERIAC_BROKER_URL": broker_url, "CELERIAC_TEST_DIR": str(marks),
           "PYTHONPATH": os.pathsep.join([APPS, os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "quiet.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celeriac", "-q", "--no-color", "--skip-checks",
                                 "-A", "controlapp", "worker", "-n", "q@%h", "-c", "1", "-l", "info"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert wait_for(coreapp.add.delay(1, 2), 30) == 3
        text = log.read_text()
        assert " -------------- " not in text and "[tasks]" not in text  # no banner
    finally:
        proc.terminate()
        proc.wait(20)
    # Accepted where Celery's scripts put them (before the command), as one-shot commands too.
    for flag in ("--no-color", "--skip-checks", "-q"):
        out = subprocess.run([sys.executable, "-m", "celeriac", flag, "-A", "coreapp", "report"], env=env,
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert out.returncode == 0 and out.stdout.startswith("software -> celeriac:"), (flag, out.stderr)


def test_beat_hostname_names_the_beat_in_its_banner(app, broker_url, tmp_path):
    env = {**os.environ, "CELERIAC_BROKER_URL": broker_url,
           "PYTHONPATH": os.pathsep.join([APPS, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "coreapp", "beat", "-n", "beaty@box",
                             "--no-enable-remote-control"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(lines) < 40:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            if line.startswith("Node ->"):
                break
        assert "Node -> beaty@box\n" in lines, lines
    finally:
        proc.terminate()
        proc.wait(20)
        proc.stdout.close()  # type: ignore[union-attr]


def test_rdb_stops_a_task_in_a_pool_process_until_a_client_continues_it(app, start, tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = start("-c", "1", "-I", "includedtasks", name="dbg", env={"CELERIAC_RDB_PORT": str(port)})
    result = app.send_task("includedtasks.debugged", (5,))

    def connect() -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            return None

    client = wait_until(connect, 20, 0.1, message="the debugger listening")
    with client, client.makefile("rw") as session:
        def until_prompt() -> str:
            seen = ""
            while not seen.endswith("(Pdb) "):
                char = session.read(1)
                assert char, seen
                seen += char
            return seen

        until_prompt()
        session.write("p x * 10\n")
        session.flush()
        assert "50" in until_prompt()
        assert result.state == states.PENDING  # held in the debugger
        session.write("c\n")
        session.flush()
    assert wait_for(result, 20) == 6
    log = worker.log()
    assert f"Remote Debugger:{port}: Ready to connect: telnet 127.0.0.1 {port}" in log
    assert "Session with 127.0.0.1:" in log


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_worker_shutdown_raised_in_a_task_stops_its_worker_warmly(app, start, pool):
    import coreapp

    worker = start("-c", "2", "-P", pool, "-I", "includedtasks", name=f"stop-{pool}")
    running = coreapp.sleep.delay(1.5, "warm")
    wait_until(lambda: (app.control.inspect(timeout=5).active() or {}).get(node(f"stop-{pool}")), 20, 0.1,
               message="the sleep task running")
    stopper = app.send_task("includedtasks.stop_worker")
    assert worker.proc is not None
    assert worker.proc.wait(30) == 0
    assert wait_for(running, 5) == "warm"  # warm: the running task finished first
    failed = wait_for(stopper, 5, propagate=False)
    assert type(failed).__name__ == "WorkerShutdown"
    assert "a task raised WorkerShutdown: warm shutdown of the worker" in worker.log()


def test_a_result_sent_with_ignore_result_is_ignored_and_get_does_not_wait(app):
    import coreapp

    from celeriac.exceptions import ResultTimeout

    started = time.monotonic()
    assert coreapp.quiet.delay("q").ignored is True  # the task's own ignore_result=True
    sent = coreapp.add.apply_async((1, 2), ignore_result=True)
    assert sent.ignored is True and sent.get(timeout=5) is None
    assert time.monotonic() - started < 2
    kept = coreapp.add.delay(1, 2)
    assert kept.ignored is False
    with pytest.raises(ResultTimeout):
        kept.get(timeout=0.2)  # no worker runs here: a stored result is waited for


def test_on_replace_is_called_with_the_replacement_carrying_this_tasks_id(app, start, marks):
    start("-c", "1", "-I", "includedtasks", name="repl")
    result = app.send_task("includedtasks.replaced", (4,))
    assert wait_for(result, 20) == 5
    assert read_marks(marks, "on_replace") == [f"{result.id} coreapp.add {result.id}"]
