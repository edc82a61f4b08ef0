"""Promise 9 against real workers: writing to the broker is not running code, a signing key
makes unsigned or replayed commands and beat entries inert, and secrets named in
``task_redact_args`` appear on no surface that shows arguments."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from celeriac import Celery, message, signing, states
from celeriac.beat import Schedule
from celeriac.beat.entry import Entry
from celeriac.beat.scheduler import Scheduler
from celeriac.beat.store import ENTRIES, PAUSED, BeatStore
from celeriac.brokers import from_url
from celeriac.control import CONTROL_LOG
from celeriac.events import EVENT_LOG, decode_entry
from celeriac.message import Envelope
from celeriac.schedules import as_schedule
from celeriac.testing import WorkerProcess, wait_until, worker_process
from conftest import APPS, read_marks

KEY = "test-signing-key"
SECRETS = ("hunter2", "tok-xyz")


class Detonator:
    """Unpickling this creates ``path``: proof that a pickle was loaded, harmless otherwise."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


@pytest.fixture
def secure(broker_url: str, marks: Path) -> Iterator[Celery]:
    """secureapp's app pointed at the test broker; settings a test changes are put back."""
    import secureapp

    app = secureapp.app
    saved = {k: app.conf[k] for k in ("task_message_signing_key", "task_redact_args", "task_send_sent_event")}
    app.conf.broker_url = broker_url
    app._reset_connections()
    yield app
    app.conf.update(saved)
    app.close()


@pytest.fixture
def start_secure(broker_url: str, marks: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_secure(*args, key=, redact=)``: ``celeriac -A secureapp worker`` with those settings."""
    started: list[WorkerProcess] = []

    def start(*args: str, key: str = "", redact: str = "", ready: bool = True) -> WorkerProcess:
        name = f"s{len(started) + 1}"
        env = {"CELERIAC_TEST_DIR": str(marks), "CELERIAC_TEST_SIGNING_KEY": key, "CELERIAC_TEST_REDACT": redact}
        proc = worker_process("secureapp", "-n", f"{name}@%h", *args, broker_url=broker_url, env=env,
                              log_path=str(tmp_path / f"{name}.log"), pythonpath=[APPS])
        started.append(proc)
        return proc.wait_ready() if ready else proc

    yield start
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()


# -- finding 6: code execution and replays ------------------------------------------------------

def test_a_pickled_dead_letter_never_runs_code_with_the_default_config(app, start_worker, broker_url, tmp_path):
    """A message whose pickled arguments execute code when loaded, dead-lettered by a worker's
    recovery (its holder died too often), is recorded without ever being unpickled."""
    marker = tmp_path / "unpickled"
    body = message.encode(Envelope(id="poison-1", task="coreapp.add", args=[Detonator(str(marker))]),
                          serializer="pickle")
    broker = from_url(broker_url, max_redeliveries=100, lease_seconds=0.2)
    try:
        broker.enqueue("celery", body)
        # A holder that dies four times while running it: the test gives it back three times
        # (evict, within its own cap); the fourth recovery, past the worker's cap (3), is the
        # worker's and dead-letters it.
        for attempt in range(4):
            ghost = f"ghost@nowhere#{attempt}"
            broker.heartbeat(ghost, b"{}", ["celery"], first=True)
            got = broker.fetch(["celery"], f"{ghost}/1-0", 1, timeout=2.0)
            assert got
            broker.heartbeat(ghost, b"{}", ["celery"], running=got)
            if attempt < 3:
                assert broker.evict(ghost) == []
    finally:
        broker.close()
    worker = start_worker()
    wait_until(lambda: app.AsyncResult("poison-1").state == states.FAILURE, 20, message="dead letter recorded")
    assert "poison message" in worker.log()
    assert not marker.exists()


def test_unsigned_forged_stale_and_replayed_control_commands_are_refused(secure, start_secure):
    """With a signing key, only fresh commands signed with it run, once each."""
    secure.conf.task_message_signing_key = KEY
    worker = start_secure("-c", "1", key=KEY)
    assert secure.control.ping(timeout=5)  # signed by the client, checked by the worker, reply checked back
    assert secure.control.pool_grow(1, reply=True, timeout=5)
    grow = [data for _, data in secure.broker.log_read(CONTROL_LOG, None, 100) if b"pool_grow" in data]
    assert len(grow) == 1

    def shutdown() -> bytes:
        return json.dumps({"id": f"x{time.monotonic_ns()}", "command": "shutdown", "arguments": {},
                           "destination": None, "reply": False, "sent": time.time()}).encode()

    broker = secure.broker
    broker.log_append(CONTROL_LOG, shutdown(), 1000)                                           # unsigned
    broker.log_append(CONTROL_LOG, signing.sign(shutdown(), b"another key", b"control"), 1000)  # forged
    broker.log_append(CONTROL_LOG, signing.sign(shutdown(), KEY.encode(), b"control",           # captured
                                                signed_at=time.time() - 3600), 1000)          # an hour ago
    broker.log_append(CONTROL_LOG, signing.sign(shutdown(), KEY.encode(), b"task"), 1000)      # wrong purpose
    broker.log_append(CONTROL_LOG, grow[0], 1000)                                              # replayed
    wait_until(lambda: worker.log().count("remote control: refused a command") >= 5, 15,
               message="five refusals logged")
    refusals = [line for line in worker.log().splitlines() if "refused a command" in line]
    assert len(refusals) == 5
    assert any("not signed" in line for line in refusals)
    assert any("signature does not match" in line for line in refusals)
    assert any("old" in line and "replay" in line for line in refusals)
    assert any("already run" in line for line in refusals)
    assert worker.proc is not None and worker.proc.poll() is None
    assert grow[0].startswith(signing.PREFIX)
    stats = secure.control.inspect(timeout=5).stats()
    assert stats and next(iter(stats.values()))["pool"]["max-concurrency"] == 2  # grown once, not twice


def test_forged_beat_entries_and_pauses_are_refused(caplog):
    """With a signing key, beat sends only entries added through the API with that key."""
    app = Celery("beat-forgery", broker="memory://beat-forgery", set_as_current=False)
    app.conf.task_message_signing_key = KEY
    try:
        Schedule(app).add("report", "secure.report", 0.5)
        forged = Entry(name="wire", task="secure.wire_money", schedule=as_schedule(0.5), args=(10**6,))
        app.broker.map_set(ENTRIES, "wire", forged.to_json())                              # unsigned
        app.broker.map_set(ENTRIES, "wire2", signing.sign(forged.to_json(), b"other", b"beat-entry:wire2"))
        signed_report = app.broker.map_get(ENTRIES)["report"]
        app.broker.map_set(ENTRIES, "copy", signed_report)                                 # moved name
        app.broker.map_set(PAUSED, "report", b'{"at": 0}')                                 # forged pause
        BeatStore(app.broker).bump()
        scheduler = Scheduler(app, max_interval=0.2)
        with caplog.at_level(logging.ERROR, logger="celeriac.beat"):
            thread = scheduler.start_thread()
            try:
                sent: list[str] = []

                def sent_tasks() -> list[str]:
                    for delivery in app.broker.fetch(["celery"], "test@x/1-0", 100, timeout=0.05):
                        sent.append(message.decode(delivery.body, signing_key=app.signing_key).task)
                    return sent

                wait_until(lambda: sent_tasks().count("secure.report") >= 3, 15, message="three report runs")
            finally:
                scheduler.stop()
                thread.join(5)
        assert set(sent) == {"secure.report"}
        # One line per refused value, not one per reload.
        refused = [r.getMessage() for r in caplog.records if "refused stored" in r.getMessage()]
        assert sorted(line.split("'")[1] for line in refused) == ["copy", "report", "wire", "wire2"]
        assert "report" in [line.split("'")[1] for line in refused if "pause" in line]
        assert set(Schedule(app).entries()) == {"report"} and not Schedule(app).get("report").paused
    finally:
        app.close()


# -- finding 11: redaction everywhere arguments are shown --------------------------------------

def test_secrets_are_hidden_on_every_surface_that_shows_arguments(secure, start_secure, marks):
    """Positional, keyword and nested secrets stay out of events, inspect active/reserved/
    scheduled, result_extended's stored args, the max-retries error and the worker's log."""
    import secureapp

    secure.conf.task_redact_args = ["password", "token"]
    secure.conf.task_send_sent_event = True
    # Both leased by the worker's first fetch: one runs (active), the other waits (reserved).
    running = secureapp.hold.delay(3, "hunter2")
    waiting = secureapp.hold.apply_async((3,), {"password": "hunter2"})
    worker = start_secure("-c", "1", "--prefetch-multiplier", "4", redact="password,token")
    wait_until(lambda: read_marks(marks, "ran"), 15, message="first hold started")
    inspect = secure.control.inspect(timeout=5)
    active, reserved = inspect.active(), inspect.reserved()
    later = secureapp.login.apply_async(("bob", "hunter2"), countdown=120)
    scheduled = inspect.scheduled()
    login = secureapp.login.delay("ada", "hunter2", {"auth": [{"token": "tok-xyz"}], "n": 2})
    charge = secureapp.charge.delay("4111", "tok-xyz")
    assert running.get(timeout=20) == waiting.get(timeout=20) == "held"
    assert login.get(timeout=20) == "ada"
    assert charge.get(timeout=20, propagate=False) is not None and charge.state == states.FAILURE

    (shown_active,) = next(iter(active.values()))
    assert shown_active["args"] == "[3, '***']"
    (shown_reserved,) = next(iter(reserved.values()))
    assert shown_reserved["args"] == [3] and shown_reserved["kwargs"] == {"password": "***"}
    (shown_later,) = [s["request"] for s in scheduled["broker"] if s["request"]["id"] == later.id]
    assert shown_later["args"] == ["bob", "***"]
    assert login.args == ["ada", "***", {"auth": [{"token": "***"}], "n": 2}]
    assert "Can't retry" in str(charge.result) and "'***'" in str(charge.result)
    wait_until(lambda: b"task-failed" in b"".join(d for _, d in secure.broker.log_read(EVENT_LOG, None, 10000)),
               10, message="events flushed")
    events = [e for _, d in secure.broker.log_read(EVENT_LOG, None, 10000) for e in decode_entry(d)]
    assert {e["type"] for e in events} >= {"task-sent", "task-received", "task-failed"}
    surfaces = {"active": active, "reserved": reserved, "scheduled": scheduled, "events": events,
                "stored": [secure.backend.get_meta(login.id), secure.backend.get_meta(charge.id)],
                "log": worker.log()}
    for name, surface in surfaces.items():
        text = surface if isinstance(surface, str) else msgspec.json.encode(surface).decode()
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} shown in {name}"
