"""Alerts end to end: real workers and a real ``celeriac flower`` process (both started through
the CLI with alertapp's settings), a local HTTP receiver and a local SMTP sink (aiosmtpd) started
by each test on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

pytest.register_assert_rewrite("dashboard_support")  # as the other dashboard tests do, before importing it

from dashboard_support import DashboardProcess, cli_env  # noqa: E402

from celeriac.testing import WorkerProcess, wait_until, worker_process  # noqa: E402
from conftest import APPS  # noqa: E402
from redis_server import free_port  # noqa: E402

HOST = socket.gethostname()


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps every JSON body it is sent."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bodies: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, kind: str) -> int:
        return sum(int(b["count"]) for b in self.bodies if b["kind"] == kind)


class Sink:
    """An SMTP server on 127.0.0.1 that keeps every message it is handed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.mails.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> Sink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def cluster(broker_url: str, tmp_path: Path, app: Any) -> Iterator[Callable[..., Any]]:
    """start("dashboard", settings) / start("worker", settings, *args): processes with alertapp's
    settings (CELERIAC_TEST_ALERTS), all stopped at teardown."""
    procs: list[Any] = []

    def start(what: str, settings: dict[str, Any], *args: str, name: str = "w1") -> Any:
        env = {"CELERIAC_TEST_ALERTS": json.dumps(settings)}
        if what == "worker":
            worker = worker_process("alertapp", "-n", f"{name}@%h", *args, broker_url=broker_url,
                                    env={**env, "CELERIAC_TEST_LEASE": "2"},
                                    log_path=str(tmp_path / f"{name}.log"), pythonpath=[APPS])
            procs.append(worker)
            return worker.wait_ready()
        port = free_port()
        log_path = tmp_path / f"dashboard-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celeriac", "-A", "alertapp", "flower", f"--port={port}",
                 f"--db={tmp_path / f'history-{port}.db'}"], env=cli_env(broker_url, extra=env),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        dashboard = DashboardProcess(proc, f"http://127.0.0.1:{port}", log_path)
        procs.append(dashboard)

        def answers() -> bool:
            assert proc.poll() is None, dashboard.log()
            try:
                return httpx.get(f"{dashboard.url}/healthcheck", timeout=1).text == "OK"
            except httpx.HTTPError:
                return False

        wait_until(answers, 30, 0.1, message="the dashboard to answer")
        return dashboard

    yield start
    for proc in procs:
        if isinstance(proc, WorkerProcess):
            if proc.proc is not None and proc.proc.poll() is None:
                proc.kill()
        else:
            proc.stop()


def test_a_storm_of_200_final_failures_sends_one_alert_then_one_digest_by_webhook_and_mail(
        app, cluster, receiver, sink):
    import coreapp

    settings = {"alert_webhook_url": receiver.url, "alert_email_to": ["ops@example.com"],
                "alert_smtp_host": "127.0.0.1", "alert_smtp_port": sink.port, "alert_window": 6,
                "task_redact_args": ["x"]}
    cluster("dashboard", settings)
    cluster("worker", settings, "-c", "2")
    time.sleep(1)  # the dashboard follows the log from its start; the storm starts after
    for i in range(200):
        coreapp.add.delay("hunter2", i)  # TypeError, whose message does not repeat the argument

    wait_until(lambda: receiver.count("task-failed") >= 200, 60, 0.2,
               message=f"200 failures alerted (so far {receiver.count('task-failed')})")
    time.sleep(7)  # a further window: nothing more may come
    assert [(b["digest"], b["count"]) for b in receiver.bodies] == [(False, 1), (True, 199)]
    first, digest = receiver.bodies
    assert first["alerts"][0]["name"] == "coreapp.add" and "TypeError" in first["alerts"][0]["exception"]
    assert len(digest["alerts"]) == 50 and digest["omitted"] == 149 and digest["by_name"] == {"coreapp.add": 199}
    assert "199 more tasks failed" in digest["text"]
    assert all(a["args"].startswith("('***', ") for b in receiver.bodies for a in b["alerts"])  # redacted
    assert "hunter2" not in json.dumps(receiver.bodies)

    wait_until(lambda: len(sink.mails) >= 2, 30, 0.2, message="two mails")
    time.sleep(1)
    assert len(sink.mails) == 2
    assert sink.mails[0]["To"] == "ops@example.com" and "failed: TypeError" in sink.mails[0]["Subject"]
    assert "199 more tasks failed" in sink.mails[1]["Subject"]
    assert all("hunter2" not in m.as_string() for m in sink.mails)


def test_a_task_retried_then_succeeded_alerts_nothing_and_a_final_failure_does(app, cluster, receiver):
    import coreapp

    settings = {"alert_webhook_url": receiver.url, "alert_window": 2}
    cluster("dashboard", settings)
    cluster("worker", settings, "-c", "1")
    time.sleep(1)
    assert coreapp.flaky.delay(2).get(timeout=20) == 2  # failed twice, retried, then succeeded
    time.sleep(4)
    assert receiver.bodies == []
    failed = coreapp.flaky.delay(9)  # fails past its max_retries: a final failure
    failed.get(timeout=20, propagate=False)
    wait_until(lambda: receiver.bodies, 20, 0.1, message="the final failure's alert")
    time.sleep(3)
    assert [(b["kind"], b["count"], b["alerts"][0]["task_id"]) for b in receiver.bodies] == \
        [("task-failed", 1, failed.id)]
    assert receiver.bodies[0]["alerts"][0]["retries"] == 3


def test_a_webhook_that_is_down_gets_the_alert_once_it_is_back(app, cluster):
    import coreapp

    later = Receiver()  # its port is chosen but nothing listens yet
    settings = {"alert_webhook_url": later.url, "alert_window": 30}
    dashboard = cluster("dashboard", settings)
    cluster("worker", settings, "-c", "1")
    time.sleep(1)
    coreapp.fail.delay("down").get(timeout=20, propagate=False)
    wait_until(lambda: "trying again" in dashboard.log(), 20, 0.1, message="a failed attempt logged")
    later.start()
    try:
        wait_until(lambda: later.bodies, 30, 0.1, message="the alert delivered after the receiver came back")
        assert later.bodies[0]["alerts"][0]["exception"] == "ValueError('down')"
    finally:
        later.stop()


def test_a_killed_worker_sends_a_worker_offline_alert(app, cluster, receiver):
    settings = {"alert_webhook_url": receiver.url, "alert_window": 2, "alert_on": ["worker-offline"]}
    cluster("dashboard", settings)
    doomed = cluster("worker", settings, "-c", "1", name="doomed")
    cluster("worker", settings, "-c", "1", name="stays")
    time.sleep(3)  # the alerter's first look sees both alive
    os.kill(doomed.pid, signal.SIGKILL)
    wait_until(lambda: receiver.bodies, 40, 0.2, message="a worker-offline alert")
    time.sleep(3)
    assert [(b["kind"], b["alerts"][0]["subject"]) for b in receiver.bodies] == \
        [("worker-offline", f"doomed@{HOST}")]


def test_a_queue_deeper_than_its_threshold_alerts_once_per_cooldown(app, cluster, receiver):
    import coreapp

    settings = {"alert_webhook_url": receiver.url, "alert_window": 2, "alert_queue_depth": 10,
                "alert_cooldown": 600}
    cluster("dashboard", settings)
    for _ in range(9):
        coreapp.noop.apply_async(queue="nobody-home")
    time.sleep(5)
    assert receiver.bodies == []  # 9 is not above 10
    for _ in range(6):
        coreapp.noop.apply_async(queue="nobody-home")
    wait_until(lambda: receiver.bodies, 20, 0.2, message="a queue-depth alert")
    time.sleep(5)  # still above: the cooldown holds further alerts back
    assert len(receiver.bodies) == 1
    alert = receiver.bodies[0]["alerts"][0]
    assert (alert["kind"], alert["queue"], alert["depth"], alert["threshold"]) == ("queue-depth", "nobody-home", 15, 10)


def test_two_dashboards_on_one_cluster_send_each_alert_once(app, cluster, receiver):
    import coreapp

    settings = {"alert_webhook_url": receiver.url, "alert_window": 2}
    cluster("dashboard", settings)
    cluster("dashboard", settings)
    cluster("worker", settings, "-c", "1")
    time.sleep(1)
    coreapp.fail.delay("once").get(timeout=20, propagate=False)
    wait_until(lambda: receiver.bodies, 20, 0.1, message="the alert")
    time.sleep(4)
    assert [b["count"] for b in receiver.bodies] == [1]


def test_a_dead_lettered_task_alerts_with_its_reason(app, cluster, receiver):
    settings = {"alert_webhook_url": receiver.url, "alert_window": 2}
    cluster("dashboard", settings)
    cluster("worker", settings, "-c", "1")
    time.sleep(1)
    lost = app.send_task("coreapp.no_such_task", args=[1])
    wait_until(lambda: receiver.bodies, 20, 0.1, message="the dead letter's alert")
    [body] = receiver.bodies
    alert = body["alerts"][0]
    assert (body["kind"], alert["task_id"], alert["name"]) == ("task-dead-lettered", lost.id, "coreapp.no_such_task")
    assert "no_such_task" in alert["reason"]


def test_a_task_that_waited_past_the_threshold_alerts_and_a_delayed_one_does_not(app, cluster, receiver):
    import coreapp

    settings = {"alert_webhook_url": receiver.url, "alert_window": 2, "alert_queue_wait": 2.5,
                "alert_on": ["queue-wait"]}
    cluster("dashboard", settings)
    worker = cluster("worker", settings, "-c", "1")
    later = coreapp.add.apply_async((1, 1), countdown=4)  # due in 4 s: its wait starts then
    assert later.get(timeout=20) == 2
    time.sleep(3)
    assert receiver.bodies == []
    worker.kill()
    waited = coreapp.add.delay(2, 2)
    time.sleep(4)
    cluster("worker", settings, "-c", "1", name="w2")
    assert waited.get(timeout=20) == 4
    wait_until(lambda: receiver.bodies, 20, 0.1, message="the queue-wait alert")
    alert = receiver.bodies[0]["alerts"][0]
    assert (alert["kind"], alert["queue"], alert["task_id"]) == ("queue-wait", "celery", waited.id)
    assert alert["wait"] >= 4 and alert["threshold"] == 2.5
