"""Signals users hang alerting on fire in a real worker (issue 10, finding 10).

The worker runs ``tests/apps/signalapp.py``, whose receivers append one JSON line per signal to a
file: what the worker's processes heard, whatever process heard it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import states
from celeriac.exceptions import RemoteTaskError
from celeriac.testing import WorkerProcess, push_raw, wait_until, worker_process
from conftest import APPS


@pytest.fixture
def sigapp(redis_url: str, marks: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CELERIAC_BROKER_URL", redis_url)
    import signalapp

    monkeypatch.setattr(signalapp, "DIRECTORY", str(marks))
    signalapp.app.conf.broker_url = redis_url
    signalapp.app._reset_connections()
    yield signalapp
    signalapp.app.close()


@pytest.fixture
def signal_worker(redis_url: str, marks: Path, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = worker_process("signalapp", "-n", "sig@%h", "-c", "1", broker_url=redis_url,
                          env={"CELERIAC_TEST_DIR": str(marks)}, log_path=str(tmp_path / "worker.log"),
                          pythonpath=[APPS])
    try:
        yield proc.wait_ready()
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()


def heard(marks: Path, signal: str | None = None) -> list[dict[str, Any]]:
    path = marks / "signals"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [one for one in lines if signal is None or one["signal"] == signal]


def one(marks: Path, signal: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for entry in heard(marks, signal):
            if all(entry.get(k) == v for k, v in match.items()):
                return entry
        return None

    return wait_until(find, timeout, message=f"{signal} {match}")


def test_task_signals_fire_in_the_worker_with_celerys_arguments(sigapp, signal_worker, marks):
    worker_pid = signal_worker.pid
    ok = sigapp.add.delay(2, 3)
    assert ok.get(timeout=10) == 5
    success = one(marks, "task_success", task_id=ok.id)
    assert success["sender"] == "signalapp.add" and success["result"] == 5 and success["pid"] != worker_pid
    assert 0 <= success["runtime"] < 1
    assert one(marks, "task_received", task_id=ok.id)["task"] == "signalapp.add"
    assert one(marks, "task_prerun", task_id=ok.id)["args"] == [2, 3]
    assert one(marks, "task_postrun", task_id=ok.id)["state"] == states.SUCCESS
    assert one(marks, "before_task_publish", task_id=ok.id)["routing_key"] == "celery"
    one(marks, "after_task_publish", task_id=ok.id)

    bad = sigapp.boom.delay("disk full")
    with pytest.raises(RemoteTaskError):
        bad.get(timeout=10)
    failure = one(marks, "task_failure", task_id=bad.id)
    assert failure["sender"] == "signalapp.boom" and "disk full" in failure["exception"]
    assert failure["args"] == ["disk full"] and "ValueError: disk full" in failure["einfo"]

    retried = sigapp.retry_once.delay()
    assert retried.get(timeout=10) == "second"
    retry = one(marks, "task_retry", task_id=retried.id)
    assert retry["retries"] == 0 and "first attempt" in retry["reason"]

    traced = sigapp.trace.delay()
    assert traced.get(timeout=10) == f"trace-{traced.id}"  # a header added by before_task_publish


def test_revoked_unknown_and_rejected_messages_fire_their_signals(sigapp, signal_worker, marks, redis_url):
    expired = sigapp.add.apply_async((1, 1), expires=-1)
    assert one(marks, "task_revoked", task_id=expired.id)["expired"] is True
    revoked_id = "revoked-before-it-ran"
    sigapp.app.control.revoke(revoked_id)
    time.sleep(0.5)  # the worker learns of the revocation through its control log
    sigapp.add.apply_async((1, 1), task_id=revoked_id)
    revoked = one(marks, "task_revoked", task_id=revoked_id)
    assert revoked["sender"] == "signalapp.add" and revoked["expired"] is False and revoked["terminated"] is False

    running = sigapp.sleep.delay(30)
    wait_until(lambda: heard(marks, "task_prerun") and any(e["task_id"] == running.id
                                                           for e in heard(marks, "task_prerun")), 10)
    sigapp.app.control.revoke(running.id, terminate=True)
    terminated = one(marks, "task_revoked", task_id=running.id)
    assert terminated["terminated"] is True and terminated["signum"] == 15
    assert terminated["pid"] == signal_worker.pid  # the main process saw it end

    sigapp.app.send_task("signalapp.not_there", task_id="unknown-1")
    assert one(marks, "task_unknown", task_id="unknown-1")["name"] == "signalapp.not_there"
    push_raw(redis_url, "celery", b"\x00 not a message")
    one(marks, "task_rejected")

    lost = sigapp.die.delay()
    failure = one(marks, "task_failure", task_id=lost.id)
    assert "WorkerLostError" in failure["exception"] and failure["pid"] == signal_worker.pid

    poison = sigapp.die_always.delay()  # redelivered up to the cap, then its one final failure
    failure = one(marks, "task_failure", task_id=poison.id, timeout=30)
    assert "poison" in failure["exception"] and failure["pid"] == signal_worker.pid

    killed = sigapp.stuck.delay()
    failure = one(marks, "task_failure", task_id=killed.id)
    assert "TimeLimitExceeded" in failure["exception"] and failure["sender"] == "signalapp.stuck"


def test_worker_lifecycle_signals_fire_and_the_users_root_handler_stays(sigapp, signal_worker, marks):
    pid = signal_worker.pid
    for name in ("celeryd_init", "worker_init", "celeryd_after_setup", "worker_before_create_process",
                 "worker_ready", "after_setup_logger", "after_setup_task_logger"):
        assert one(marks, name)["pid"] == pid, name
    assert one(marks, "celeryd_init")["sender"].startswith("sig@")
    assert one(marks, "worker_process_init")["pid"] != pid
    one(marks, "heartbeat_sent")
    signal_worker.stop()
    for name in ("worker_shutting_down", "worker_shutdown"):
        assert one(marks, name)["pid"] == pid, name
    assert one(marks, "worker_process_shutdown")["pid"] != pid
    # worker_hijack_root_logger=False: the handler the app put on the root logger got the worker's lines.
    assert "ready." in (marks / "user.log").read_text()


def test_a_worker_with_embedded_beat_sends_beat_init_and_beat_embedded_init(sigapp, redis_url, marks, tmp_path):
    proc = worker_process("signalapp", "-n", "beat@%h", "-c", "1", "-B", broker_url=redis_url,
                          env={"CELERIAC_TEST_DIR": str(marks)}, log_path=str(tmp_path / "beat.log"),
                          pythonpath=[APPS])
    try:
        proc.wait_ready()
        for name in ("beat_init", "beat_embedded_init"):
            assert one(marks, name)["pid"] == proc.pid, name
            assert one(marks, name)["sender"] == "Scheduler"
    finally:
        proc.stop()
