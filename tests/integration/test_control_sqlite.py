"""The commands the seeds troubleshoot with, on the embedded SQLite broker: status, inspect,
revoke before start, queues and dead letters, against real workers sharing one file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_control import FAST_LEASE, blocks, control_workers, node, ok, read_log, run_cli

from celeriac import states
from celeriac.events import EVENT_LOG
from celeriac.testing import WorkerProcess, wait_until
from conftest import read_marks

TIMEOUT = "5"


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/c.db"


@pytest.fixture
def start(broker_url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    yield from control_workers(broker_url, marks, tmp_path)


def test_status_and_inspect_active_and_registered(app, start, broker_url, marks):
    import coreapp

    start("-Q", "a", "-c", "1", name="w1")
    start("-Q", "b", "-c", "1", name="w2")
    assert ok(run_cli(broker_url, "status", "-t", TIMEOUT)).splitlines() == [
        f"-> {node('w1')}: OK", f"-> {node('w2')}: OK", "", "2 nodes online."]

    running = coreapp.sleep.apply_async((5, "s"), queue="b")
    wait_until(lambda: read_marks(marks, "started"), 10, message="task started")
    text = ok(run_cli(broker_url, "inspect", "active", "-t", TIMEOUT))
    replies = blocks(text)
    assert replies[f"{node('w1')}: OK"] == ["- empty -"]
    [item] = replies[f"{node('w2')}: OK"]
    assert running.id in item and "coreapp.sleep" in item

    registered = blocks(ok(run_cli(broker_url, "inspect", "registered", "-t", TIMEOUT)))
    assert all("* coreapp.add" in lines for lines in registered.values()) and len(registered) == 2


def test_revoke_before_start_queues_and_dead_letters(app, start, broker_url, marks):
    import controlapp
    import coreapp

    early = coreapp.record.apply_async(("early",), queue="a")
    assert "no worker replied" in ok(run_cli(broker_url, "revoke", early.id))
    for priority in (9, 0):
        coreapp.add.apply_async((1, 1), queue="idle", priority=priority)
    coreapp.add.apply_async((1, 1), queue="idle", countdown=60)
    [idle] = json.loads(ok(run_cli(broker_url, "queues", "-Q", "idle", "--json")))
    assert (idle["ready"], idle["ready_by_priority"], idle["delayed"]) == (2, {"9": 1, "0": 1}, 1)

    start("-Q", "a", "-c", "1", name="w1")
    wait_until(lambda: early.state == states.REVOKED, 10, message="revoked task skipped")
    rejected = controlapp.reject_until_allowed.apply_async(("d1",), queue="a")
    wait_until(lambda: app.broker.stats(["a"])[0].dead == 1, 10, message="dead-lettered")
    assert read_marks(marks, "record") == []

    text = ok(run_cli(broker_url, "dead", "list", "-Q", "a"))
    assert rejected.id in text and "rejected by the task" in text
    [letter] = json.loads(ok(run_cli(broker_url, "dead", "list", "--json")))
    assert letter["task_id"] == rejected.id and letter["queue"] == "a"
    table = ok(run_cli(broker_url, "queues"))
    assert any(" a " in line and line.rstrip().endswith("1 │") for line in table.splitlines()), table

    (marks / "allow-d1").touch()
    assert ok(run_cli(broker_url, "dead", "requeue", rejected.id)).strip() == "Requeued 1 dead letter."
    wait_until(lambda: rejected.state == states.SUCCESS, 10, message="requeued task ran")


def test_killed_worker_shows_offline_in_status(app, start, broker_url):
    """The same promise as on Redis: kill -9 shows as offline within the heartbeat bound, and
    stays listed while the other worker's recovery passes run."""
    start("-Q", "a", "-c", "1", name="w1")
    start("-Q", "b", "-c", "1", name="w2", env=FAST_LEASE).kill()

    def offline() -> bool:
        return any(w["hostname"] == node("w2") and not w["alive"] for w in app.control.workers())

    wait_until(offline, 6, 0.05, message="w2 listed offline")
    time.sleep(1.5)
    assert offline()
    lines = ok(run_cli(broker_url, "status", "-t", "1")).splitlines()
    assert lines[0] == f"-> {node('w1')}: OK" and lines[1].startswith(f"-> {node('w2')}: OFFLINE, last seen ")
    assert lines[-1] == "1 node online."


def test_event_stream_is_capped_exactly(app):
    """SQLite trims the capped log exactly: the newest ``maxlen`` entries stay."""
    for i in range(300):
        app.broker.log_append(EVENT_LOG, json.dumps({"type": "test", "i": i}).encode(), 100)
    assert [event["i"] for _, event in read_log(app.broker)] == list(range(200, 300))
