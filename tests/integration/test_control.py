"""The control plane as an operator uses it: every ``status``/``inspect``/``control``/``revoke``/
``queues``/``dead``/``events`` command run as a subprocess against real workers on Redis."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from celeriac import states
from celeriac.events import EVENT_LOG
from celeriac.testing import WorkerProcess, push_raw, wait_until, worker_process
from conftest import APPS, read_marks
from redis_server import start_redis

HOST = socket.gethostname()
FAST_LEASE = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5"}
TIMEOUT = "5"  # -t for commands that wait for replies: they return as soon as every live worker replied


def node(name: str) -> str:
    return f"{name}@{HOST}"


def run_cli(broker_url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``celeriac -A controlapp ARGS`` as a user types it."""
    path = [APPS, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "CELERIAC_BROKER_URL": broker_url}
    return subprocess.run([sys.executable, "-m", "celeriac", "-A", "controlapp", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, f"exit {out.returncode}\nstdout: {out.stdout}\nstderr: {out.stderr}"
    return out.stdout


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0, out.stdout
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def blocks(text: str) -> dict[str, list[str]]:
    """``-> node: STATUS`` blocks of Celery-shaped output: {"node: STATUS": [indented lines]}."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("-> "):
            current = out.setdefault(line[3:], [])
        elif line.startswith("    "):
            current.append(line[4:])
    return out


def control_workers(broker_url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``celeriac -A controlapp worker`` (coreapp's tasks and controlapp's); every worker
    is killed at teardown."""
    started: list[WorkerProcess] = []

    def start_one(*args: str, name: str, env: dict[str, str] | None = None) -> WorkerProcess:
        proc = worker_process("controlapp", "-n", f"{name}@%h", *args, broker_url=broker_url,
                              env={"CELERIAC_TEST_DIR": str(marks), **(env or {})},
                              log_path=str(tmp_path / f"{name}.log"), pythonpath=[APPS])
        started.append(proc)
        return proc.wait_ready()

    yield start_one
    for proc in started:
        proc.kill()
        if os.environ.get("CELERIAC_TEST_SHOW_LOGS"):
            print(proc.log())


@pytest.fixture
def start(broker_url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    yield from control_workers(broker_url, marks, tmp_path)


def read_log(broker: object, name: str = EVENT_LOG) -> list[tuple[str, dict]]:
    """Every event the log keeps, oldest first, with the id of the entry holding it (a pool
    process writes a batch of events as one entry)."""
    from celeriac.events import decode_entry

    events: list[tuple[str, dict]] = []
    after = None
    while batch := broker.log_read(name, after, 5000):  # type: ignore[attr-defined]
        events += [(entry_id, event) for entry_id, data in batch for event in decode_entry(data)]
        after = batch[-1][0]
    return events


# -- no worker needed ------------------------------------------------------------------------------
def test_no_worker_replying_is_one_line_error_with_celerys_exit_code(app, broker_url):
    for args in (["status"], ["inspect", "ping"], ["control", "pool_grow"]):
        out = run_cli(broker_url, *args, "-t", "0.3")
        assert one_line_error(out) == "Error: No nodes replied within time constraint"
        assert out.returncode == 69  # EX_UNAVAILABLE, as celery exits


def test_bad_input_is_one_line_error(app, broker_url):
    line = one_line_error(run_cli(broker_url, "inspect", "activ"))
    assert line.startswith("Error: unknown inspect command 'activ' (did you mean 'active'?)")
    assert "rate limit '10/x'" in one_line_error(run_cli(broker_url, "control", "rate_limit", "coreapp.add", "10/x"))
    assert "usage: control time_limit" in one_line_error(run_cli(broker_url, "control", "time_limit", "x"))
    assert "whole number" in one_line_error(run_cli(broker_url, "control", "pool_grow", "two"))
    assert "unknown signal 'NOPE'" in one_line_error(run_cli(broker_url, "revoke", "x", "--signal", "NOPE"))
    assert "query_task needs" in one_line_error(run_cli(broker_url, "inspect", "query_task"))


def test_scheduled_lists_countdown_tasks_from_the_broker_without_a_worker(app, broker_url):
    import coreapp

    later = coreapp.add.apply_async((1, 2), queue="b", countdown=60)
    text = ok(run_cli(broker_url, "inspect", "scheduled"))
    assert blocks(text)["broker: OK"][0].startswith("* {'eta': ")
    assert later.id in text and "coreapp.add" in text
    [item] = json.loads(ok(run_cli(broker_url, "inspect", "scheduled", "--json")))["broker"]
    assert item["request"]["id"] == later.id and item["queue"] == "b"
    assert 50 < datetime.fromisoformat(item["eta"]).timestamp() - time.time() <= 60


def test_queues_table_shows_depth_per_priority_delayed_and_dead(app, broker_url):
    import coreapp

    for priority in (9, 9, 0):
        coreapp.add.apply_async((1, 1), queue="idle", priority=priority)
    coreapp.add.apply_async((1, 1), queue="idle", countdown=60)
    text = ok(run_cli(broker_url, "queues", "-Q", "idle"))
    row = next(line for line in text.splitlines() if " idle " in line)
    assert re.search(r"idle\s+│\s+3\s+│\s+9:2 0:1\s+│\s+1\s+│\s+0\s+│\s+0", row), text
    [stats] = json.loads(ok(run_cli(broker_url, "queues", "-Q", "idle", "--json")))
    assert stats == {"name": "idle", "ready": 3, "ready_by_priority": {"9": 2, "0": 1}, "delayed": 1,
                     "unacked": 0, "dead": 0}


def test_event_stream_is_capped(app):
    """The capped log drops its oldest entries; Redis trims approximately (whole stream nodes of
    100 entries) for speed, so the bound there is cap + 100."""
    broker = app.broker
    for i in range(600):
        broker.log_append(EVENT_LOG, json.dumps({"type": "test", "i": i}).encode(), 200)
    kept = read_log(broker)
    slack = 100 if app.broker_url.startswith("redis") else 0
    assert 200 <= len(kept) <= 200 + slack
    assert kept[-1][1]["i"] == 599 and kept[0][1]["i"] > 0
    assert [e["i"] for _, e in kept] == sorted(e["i"] for _, e in kept)


# -- two workers on different queues ---------------------------------------------------------------
def test_two_workers_answer_status_ping_registered_stats_active_queues_conf_and_shutdown(app, start, broker_url):
    # The password must show nowhere: not in stats (broker URL) nor conf (result_backend).
    secret = broker_url.replace("redis://", "redis://default:hunter2@")
    start("-Q", "a", "-c", "1", name="w1",
          env={"CELERIAC_BROKER_URL": secret, "CELERIAC_TEST_RESULT_BACKEND": secret})
    w2 = start("-Q", "b", "-c", "2", name="w2")

    text = ok(run_cli(broker_url, "status", "-t", TIMEOUT))
    assert text.splitlines() == [f"-> {node('w1')}: OK", f"-> {node('w2')}: OK", "", "2 nodes online."]
    assert blocks(ok(run_cli(broker_url, "inspect", "ping", "-t", TIMEOUT))) == {
        f"{node('w1')}: OK": ["pong"], f"{node('w2')}: OK": ["pong"]}

    text = ok(run_cli(broker_url, "inspect", "registered", "-d", node("w1"), "-t", TIMEOUT))
    registered = blocks(text)
    assert list(registered) == [f"{node('w1')}: OK"]
    assert "* controlapp.reject_until_allowed" in registered[f"{node('w1')}: OK"]
    assert "* coreapp.add" in registered[f"{node('w1')}: OK"] and text.endswith("1 node online.\n")

    text = ok(run_cli(broker_url, "inspect", "stats", "--json", "-t", TIMEOUT))
    stats = json.loads(text)
    assert stats[node("w1")]["pool"]["max-concurrency"] == 1 and stats[node("w2")]["pool"]["max-concurrency"] == 2
    assert stats[node("w1")]["broker"]["url"].startswith("redis://default:***@")
    assert "hunter2" not in text

    queues = blocks(ok(run_cli(broker_url, "inspect", "active_queues", "-t", TIMEOUT)))
    assert [line.startswith("* {'name': 'a'") for line in queues[f"{node('w1')}: OK"]] == [True]
    assert [line.startswith("* {'name': 'b'") for line in queues[f"{node('w2')}: OK"]] == [True]

    text = ok(run_cli(broker_url, "inspect", "conf", "-t", TIMEOUT))
    assert "hunter2" not in text and "redis://default:***@" in text
    assert json.loads(ok(run_cli(broker_url, "inspect", "revoked", "--json", "-t", TIMEOUT))) == {
        node("w1"): [], node("w2"): []}

    assert blocks(ok(run_cli(broker_url, "control", "shutdown", "-d", node("w2"), "-t", TIMEOUT))) == {
        f"{node('w2')}: OK": ["shutting down"]}
    assert w2.proc is not None and w2.proc.wait(15) == 0
    text = ok(run_cli(broker_url, "status", "-t", TIMEOUT))
    assert text.splitlines() == [f"-> {node('w1')}: OK", "", "1 node online."]
    assert [w["hostname"] for w in app.control.workers()] == [node("w1")]  # a clean stop deregisters


def test_killed_worker_shows_offline_within_the_heartbeat_bound(app, start, broker_url):
    """kill -9: no goodbye, so the registry notices by the heartbeat stopping (lease 2 s here)
    and keeps the worker listed as offline, as status shows it."""
    start("-Q", "a", "-c", "1", name="w1")
    victim = start("-Q", "b", "-c", "1", name="w2", env=FAST_LEASE)
    killed_at = time.monotonic()
    victim.kill()

    def offline() -> bool:
        return any(w["hostname"] == node("w2") and not w["alive"] for w in app.control.workers())

    wait_until(offline, 6, 0.05, message="w2 listed offline")
    assert time.monotonic() - killed_at < 2 + 1.5  # lease + heartbeat interval + slack
    time.sleep(1.5)  # a recovery pass by w1 must not make it vanish: it is offline, not unknown
    assert offline(), app.control.workers()
    text = ok(run_cli(broker_url, "status", "-t", "1"))
    lines = text.splitlines()
    assert lines[0] == f"-> {node('w1')}: OK"
    assert lines[1].startswith(f"-> {node('w2')}: OFFLINE, last seen ")
    assert lines[-1] == "1 node online."


# -- what workers are doing ------------------------------------------------------------------------
def test_inspect_active_and_reserved_list_running_and_prefetched_tasks(app, start, broker_url, marks):
    import coreapp

    # Sent before the worker starts, so its one process leases all three in one fetch. The first
    # must still run at the last look: five CLI runs take 2-5 s each on a loaded 2-core machine,
    # so a few seconds of sleep ended mid-test. The worker is killed at teardown, its child with it.
    running, *waiting = [coreapp.sleep.apply_async((120, f"s{i}"), queue="a") for i in range(3)]
    start("-Q", "a", "-c", "1", "--prefetch-multiplier", "4", name="w1")
    wait_until(lambda: read_marks(marks, "started"), 10, message="first task started")

    text = ok(run_cli(broker_url, "inspect", "active", "-t", TIMEOUT))
    [item] = blocks(text)[f"{node('w1')}: OK"]
    assert item.startswith("* {") and running.id in item and "coreapp.sleep" in item
    [active] = json.loads(ok(run_cli(broker_url, "inspect", "active", "--json", "-t", TIMEOUT)))[node("w1")]
    assert active["id"] == running.id and active["args"] == "[120, 's0']" and active["time_start"] > 0

    reserved = json.loads(ok(run_cli(broker_url, "inspect", "reserved", "--json", "-t", TIMEOUT)))[node("w1")]
    assert sorted(r["id"] for r in reserved) == sorted(r.id for r in waiting)

    found = json.loads(ok(run_cli(broker_url, "inspect", "query_task", running.id, "--json", "-t", TIMEOUT)))
    assert found[node("w1")][running.id][0] == "active"

    [depth] = json.loads(ok(run_cli(broker_url, "queues", "-Q", "a", "--json")))
    assert (depth["ready"], depth["unacked"]) == (0, 3)


def test_inspect_reserved_leaves_out_a_finished_task_whose_ack_is_still_to_come(app, start, broker_url, marks):
    """A pool process's flusher stores a result before it acks the message: while the result
    store is slow (here: paused), the message stays leased though the task has finished. It
    is then neither running nor waiting to run, so neither list may show it."""
    import coreapp

    store = start_redis()
    try:
        start("-Q", "a", "-c", "1", name="w1", env={"CELERIAC_TEST_RESULT_BACKEND": store.url})
        store.pause()
        try:
            done = coreapp.sleep.apply_async((0, "done"), queue="a")
            wait_until(lambda: read_marks(marks, "finished"), 10, message="the task finished")
            wait_until(lambda: json.loads(ok(run_cli(broker_url, "inspect", "active", "--json", "-t", TIMEOUT)))
                       == {node("w1"): []}, 20, 0.2, message="the task no longer shown active")
            [depth] = json.loads(ok(run_cli(broker_url, "queues", "-Q", "a", "--json")))
            assert (depth["ready"], depth["unacked"]) == (0, 1)  # its ack waits behind the result
            reserved = json.loads(ok(run_cli(broker_url, "inspect", "reserved", "--json", "-t", TIMEOUT)))
            assert reserved == {node("w1"): []}, f"{done.id} shown waiting to run: {reserved}"
        finally:
            store.resume()
        wait_until(lambda: json.loads(ok(run_cli(broker_url, "queues", "-Q", "a", "--json")))[0]["unacked"] == 0,
                   20, 0.2, message="the ack once the result store answers")
    finally:
        store.stop()


def test_revoke_before_start_skips_the_task_even_when_no_worker_was_running(app, start, broker_url, marks):
    import coreapp

    early = coreapp.record.apply_async(("early",), queue="a")
    out = ok(run_cli(broker_url, "revoke", early.id))
    assert out.strip() == "revoked 1 task; no worker replied: a worker that picks it up later skips it"
    assert early.id in app.control.revoked()

    start("-Q", "a", "-c", "1", name="w1")
    wait_until(lambda: early.state == states.REVOKED, 10, message="early task REVOKED")
    # Busy long enough for the revoke CLI to start and reply even on a loaded machine: the
    # queued task must still be waiting behind it when its revocation lands.
    busy = coreapp.sleep.apply_async((6, "busy"), queue="a")
    wait_until(lambda: read_marks(marks, "started"), 10, message="busy task started")
    queued = coreapp.record.apply_async(("queued",), queue="a")
    assert blocks(ok(run_cli(broker_url, "revoke", queued.id, "-t", TIMEOUT))) == {
        f"{node('w1')}: OK": [f"tasks {queued.id} flagged as revoked"]}
    assert busy.get(timeout=20) == "busy"
    wait_until(lambda: queued.state == states.REVOKED, 10, message="queued task REVOKED")
    assert coreapp.record.apply_async(("after",), queue="a").get(timeout=10) == "after"
    assert [line.split()[0] for line in read_marks(marks, "record")] == ["after"]  # neither revoked one ran
    revoked = json.loads(ok(run_cli(broker_url, "inspect", "revoked", "--json", "-t", TIMEOUT)))[node("w1")]
    assert sorted(revoked) == sorted([early.id, queued.id])


@pytest.mark.parametrize("signal_args", [[], ["--signal", "SIGKILL"]], ids=["SIGTERM", "SIGKILL"])
def test_revoke_terminate_stops_the_running_task_and_the_pool_refills(app, start, broker_url, marks,
                                                                      signal_args):
    import coreapp

    start("-Q", "a", "-c", "1", name="w1")
    before = coreapp.pid.apply_async(queue="a").get(timeout=10)
    long = coreapp.sleep.apply_async((30, "long"), queue="a")
    wait_until(lambda: read_marks(marks, "started"), 10, message="long task started")
    text = ok(run_cli(broker_url, "revoke", long.id, "--terminate", *signal_args, "-t", TIMEOUT))
    assert f"terminated {long.id}" in text
    wait_until(lambda: long.state == states.REVOKED, 8, message="running task REVOKED")
    after = coreapp.pid.apply_async(queue="a").get(timeout=10)
    assert after != before  # the process that ran it was replaced
    assert read_marks(marks, "finished") == []


# -- steering --------------------------------------------------------------------------------------
def test_rate_and_time_limits_change_at_run_time(app, start, broker_url, marks):
    import coreapp

    start("-Q", "a", "-c", "2", name="w1")
    text = ok(run_cli(broker_url, "control", "rate_limit", "coreapp.limited", "2/s", "-t", TIMEOUT))
    assert blocks(text) == {f"{node('w1')}: OK": ["new rate limit set successfully: 2/s"]}
    results = [coreapp.limited.apply_async((i,), queue="a") for i in range(4)]
    assert [r.get(timeout=15) for r in results] == [0, 1, 2, 3]
    starts = sorted(float(line.split()[1]) for line in read_marks(marks, "limited"))
    assert starts[-1] - starts[0] >= 1.3  # 2/s: 0.5 s apart (its own 10/s would take 0.3 s)

    text = ok(run_cli(broker_url, "control", "time_limit", "coreapp.sleep", "0.5", "1", "-t", TIMEOUT))
    assert blocks(text) == {f"{node('w1')}: OK": ["time limits set successfully: soft=0.5 hard=1.0"]}
    began = time.monotonic()
    limited = coreapp.sleep.apply_async((20, "limited"), queue="a")
    wait_until(lambda: limited.state == states.FAILURE, 10, message="time-limited task failed")
    assert time.monotonic() - began < 8
    assert "TimeLimitExceeded" in str(limited.result.__class__.__name__)

    unknown = run_cli(broker_url, "control", "rate_limit", "coreapp.nope", "1/s", "-t", TIMEOUT)
    assert unknown.returncode == 1 and "unknown task 'coreapp.nope'" in unknown.stdout


def test_add_and_cancel_consumer_and_pool_grow_and_shrink(app, start, broker_url):
    import coreapp

    start("-Q", "a", "-c", "1", name="w1")
    waiting = coreapp.record.apply_async(("c1",), queue="c")
    text = ok(run_cli(broker_url, "control", "add_consumer", "c", "-d", node("w1"), "-t", TIMEOUT))
    assert blocks(text) == {f"{node('w1')}: OK": ["add consumer c"]}
    assert waiting.get(timeout=10) == "c1"
    queues = blocks(ok(run_cli(broker_url, "inspect", "active_queues", "-t", TIMEOUT)))[f"{node('w1')}: OK"]
    assert len(queues) == 2 and "'name': 'c'" in queues[1]

    ok(run_cli(broker_url, "control", "cancel_consumer", "c", "-t", TIMEOUT))
    time.sleep(1.2)  # a fetch already blocking on [a, c] ends within a second
    left = coreapp.record.apply_async(("c2",), queue="c")
    time.sleep(1.0)
    assert app.broker.stats(["c"])[0].ready_total == 1 and left.state == states.PENDING

    def processes() -> int:
        stats = app.control.inspect(timeout=3).stats() or {}
        return len(stats[node("w1")]["pool"]["processes"]) if node("w1") in stats else -1

    text = ok(run_cli(broker_url, "control", "pool_grow", "2", "-t", TIMEOUT))
    assert blocks(text) == {f"{node('w1')}: OK": ["pool will grow to 3"]}
    wait_until(lambda: processes() == 3, 10, 0.2, message="pool grown to 3")
    ok(run_cli(broker_url, "control", "pool_shrink", "2", "-t", TIMEOUT))
    wait_until(lambda: processes() == 1, 10, 0.2, message="pool shrunk to 1")
    assert json.loads(ok(run_cli(broker_url, "inspect", "stats", "--json", "-t", TIMEOUT)))[
        node("w1")]["pool"]["max-concurrency"] == 1


# -- dead letters ------------------------------------------------------------------------------------
def test_dead_letters_listed_requeued_and_run_or_dropped(app, start, broker_url, marks):
    import controlapp
    import coreapp  # noqa: F401  (the app the tests send with)

    start("-Q", "a", "-c", "1", name="w1")
    rejected = controlapp.reject_until_allowed.apply_async(("d1",), queue="a")
    unknown = app.send_task("controlapp.no_such_task", queue="a")
    push_raw(broker_url, "a", b"\x00 not a message")
    wait_until(lambda: app.broker.stats(["a"])[0].dead == 3, 10, message="three dead letters")

    text = ok(run_cli(broker_url, "dead", "list", "-Q", "a"))
    assert rejected.id in text and unknown.id in text and "controlapp.reject_until_allowed" in text
    letters = {d["task_id"]: d for d in json.loads(ok(run_cli(broker_url, "dead", "list", "--json")))}
    assert letters[rejected.id]["reason"].startswith("rejected by the task: not allowed yet: d1")
    assert "NotRegistered" in letters[unknown.id]["reason"]
    assert len(letters) == 3 and all(d["queue"] == "a" for d in letters.values())
    [depth] = json.loads(ok(run_cli(broker_url, "queues", "-Q", "a", "--json")))
    assert depth["dead"] == 3

    (marks / "allow-d1").touch()
    assert ok(run_cli(broker_url, "dead", "requeue", "-Q", "a", rejected.id)).strip() == "Requeued 1 dead letter."
    wait_until(lambda: rejected.state == states.SUCCESS, 10, message="requeued task ran")
    assert read_marks(marks, "allowed") == ["d1"]

    assert "no dead letter nope" in one_line_error(run_cli(broker_url, "dead", "requeue", "nope"))
    assert run_cli(broker_url, "dead", "drop", unknown.id).returncode == 1  # asks, and no answer aborts
    assert ok(run_cli(broker_url, "dead", "drop", "-f", unknown.id)).strip() == "Dropped 1 dead letter."
    assert ok(run_cli(broker_url, "dead", "drop", "-f", "-Q", "a")).strip() == "Dropped 1 dead letter."
    assert ok(run_cli(broker_url, "dead", "list")).strip() == "No dead letters."


# -- events ------------------------------------------------------------------------------------------
def test_event_stream_holds_the_lifecycle_of_1000_tasks_in_order(app, start, broker_url):
    import coreapp

    start("-Q", "a", "-c", "2", name="w1")
    ids = [coreapp.noop.apply_async(queue="a").id for _ in range(1000)]

    def succeeded() -> int:
        return sum(1 for _, e in read_log(app.broker) if e["type"] == "task-succeeded")

    wait_until(lambda: succeeded() >= 1000, 40, 0.3, message="1000 task-succeeded events")
    entries = read_log(app.broker)
    assert len({entry_id for entry_id, _ in entries}) <= app.conf.event_stream_maxlen  # the cap counts entries
    lifecycle: dict[str, list[str]] = {task_id: [] for task_id in ids}
    for _, event in entries:
        if event.get("uuid") in lifecycle:
            lifecycle[event["uuid"]].append(event["type"])
    wrong = {t: kinds for t, kinds in lifecycle.items()
             if [k for k in kinds if k != "task-sent"] != ["task-received", "task-started", "task-succeeded"]}
    assert not wrong, list(wrong.items())[:5]
    assert {e["type"] for _, e in entries} >= {"worker-online", "worker-heartbeat"}

    lines = ok(run_cli(broker_url, "events", "--dump", "--from-start", "--max-events", "60")).splitlines()
    assert len(lines) == 60
    pattern = re.compile(r"^\S+@\S+ \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\] (worker|task)-[a-z-]+( |$)")
    assert all(pattern.match(line) for line in lines), lines[:5]
    task_line = next(line for line in lines if " task-succeeded " in line)
    assert re.search(r" task-succeeded [0-9a-f-]{36} coreapp\.noop .*runtime=", task_line)
    dumped = ok(run_cli(broker_url, "events", "--dump", "--json", "--from-start", "--max-events", "3"))
    assert [json.loads(line)["type"] for line in dumped.splitlines()][:1] in (["worker-heartbeat"],
                                                                             ["worker-online"])

    live = ok(run_cli(broker_url, "events", "--from-start", "--duration", "1.5"))
    assert "Workers" in live and node("w1") in live and "online" in live
    assert "Recent tasks" in live and ids[-1] in live and "SUCCESS" in live and "coreapp.noop" in live
