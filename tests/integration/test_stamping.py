"""Stamping with real workers: stamps reach the task (``self.request.stamps``) through canvas,
and ``revoke_by_stamped_headers`` skips (or terminates) every task so stamped, cluster-wide and
for workers started after it, as ``revoke`` does for ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_control import TIMEOUT, blocks, control_workers, node, ok, one_line_error, run_cli

from celeriac import chain, group, states
from celeriac.testing import WorkerProcess, wait_until
from conftest import read_marks


@pytest.fixture
def start(broker_url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    yield from control_workers(broker_url, marks, tmp_path)


def test_stamps_reach_the_task_through_a_chain_and_its_callback(app, start, marks):
    import controlapp

    start("-Q", "a", "-c", "1", name="w1")
    flow = chain(controlapp.stamped.si("one"), controlapp.stamped.si("two"))
    callback = controlapp.stamped.si("linked").set(queue="a")
    flow.link(callback)
    flow.stamp(batch="b1")
    last = flow.apply_async(queue="a")
    assert last.get(timeout=15) == {"tag": "two", "stamps": {"batch": "b1"}}
    assert last.parent.get(timeout=5) == {"tag": "one", "stamps": {"batch": "b1"}}
    wait_until(lambda: len(read_marks(marks, "stamped")) == 3, 10, message="the callback ran")
    assert sorted(read_marks(marks, "stamped")) == ["linked ['batch']", "one ['batch']", "two ['batch']"]


def test_revoke_by_stamped_headers_skips_stamped_tasks_also_for_workers_started_later(app, start, broker_url, marks):
    import controlapp

    # Revoked before any worker runs: the revocation waits in the broker.
    doomed = controlapp.stamped.s("doomed").stamp(batch="b1").apply_async(queue="a")
    kept = controlapp.stamped.s("kept").stamp(batch="b2").apply_async(queue="a")
    assert app.control.revoke_by_stamped_headers({"batch": "b1"}) is None
    worker = start("-Q", "a", "-c", "1", name="w1")
    assert kept.get(timeout=15) == {"tag": "kept", "stamps": {"batch": "b2"}}
    wait_until(lambda: doomed.state == states.REVOKED, 10, message="the b1 task REVOKED")

    # Revoked while queued behind a busy worker, from the command line: a group's members all go.
    busy = controlapp.held.apply_async(("busy",), queue="a")
    wait_until(lambda: read_marks(marks, "started"), 10, message="busy task started")
    members = group(controlapp.stamped.s(f"g{i}") for i in range(3)).stamp(job="j1").apply_async(queue="a")
    reply = blocks(ok(run_cli(broker_url, "control", "revoke_by_stamped_headers", "job=j1", "-t", TIMEOUT)))
    assert list(reply) == [f"{node('w1')}: OK"]
    (marks / "release-busy").touch()
    assert busy.get(timeout=10) == "busy"
    for member in members.results:
        wait_until(lambda m=member: m.state == states.REVOKED, 10, message="a stamped group member REVOKED")

    # AsyncResult's spelling revokes by stamp too, and a stamp holding a list matches by any value.
    queued = controlapp.stamped.s("listed").stamp(batch="b3").stamp(append_stamps=True, batch="b4")
    busy = controlapp.held.apply_async(("busy2",), queue="a")
    wait_until(lambda: len(read_marks(marks, "started")) == 2, 10, message="second busy task started")
    listed = queued.apply_async(queue="a")
    listed.revoke_by_stamped_headers({"batch": ["b4"]}, wait=True, timeout=float(TIMEOUT))
    (marks / "release-busy2").touch()
    assert busy.get(timeout=10) == "busy2"
    wait_until(lambda: listed.state == states.REVOKED, 10, message="the listed-stamp task REVOKED")

    # A restarted worker still skips b1.
    worker.kill()
    start("-Q", "a", "-c", "1", name="w2")
    late = controlapp.stamped.s("late").stamp(batch="b1").apply_async(queue="a")
    after = controlapp.stamped.s("after").apply_async(queue="a")
    assert after.get(timeout=15) == {"tag": "after", "stamps": {}}
    wait_until(lambda: late.state == states.REVOKED, 10, message="b1 task REVOKED after the restart")
    ran = [line.split()[0] for line in read_marks(marks, "stamped")]
    assert ran == ["kept", "after"]  # no revoked one ran


def test_revoke_by_stamped_headers_with_terminate_stops_the_running_task(app, start, marks):
    import coreapp

    start("-Q", "a", "-c", "1", name="w1")
    other = coreapp.sleep.s(0.1, "other").stamp(job="k2").apply_async(queue="a")
    assert other.get(timeout=10) == "other"
    long = coreapp.sleep.s(30, "long").stamp(job="k1").apply_async(queue="a")
    wait_until(lambda: len(read_marks(marks, "started")) == 2, 10, message="long task started")
    replies = app.control.revoke_by_stamped_headers({"job": "k1"}, terminate=True, reply=True,
                                                    timeout=float(TIMEOUT))
    assert replies and f"terminated {long.id}" in replies[0][node("w1")]["ok"]
    wait_until(lambda: long.state == states.REVOKED, 8, message="running stamped task REVOKED")
    assert read_marks(marks, "finished") == ["other " + read_marks(marks, "finished")[0].split()[1]]


def test_revoke_by_stamped_headers_from_the_command_line_without_workers(app, broker_url):
    out = ok(run_cli(broker_url, "control", "revoke_by_stamped_headers", "batch=b9", "-t", "0.3"))
    assert out.strip() == "revoked tasks so stamped; no worker replied: a worker that picks one up later skips it"
    assert app.control.revoked_stamps() == {"batch": ["b9"]}
    line = one_line_error(run_cli(broker_url, "control", "revoke_by_stamped_headers", "batch"))
    assert line == "Error: revoke_by_stamped_headers: 'batch' is not 'header=value'"
