"""Start ``celeriac -A coreapp flower`` as a user does, and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from celeriac.testing import wait_until
from conftest import APPS
from redis_server import free_port


@dataclass
class DashboardProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def cli_env(broker_url: str, marks: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    path = [APPS, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env.update({"PYTHONPATH": os.pathsep.join(path), "CELERIAC_BROKER_URL": broker_url})
    if marks is not None:
        env["CELERIAC_TEST_DIR"] = str(marks)
    env.update(extra or {})
    return env


def start_dashboard(broker_url: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                    db: str | None = None, prefix: str = "") -> DashboardProcess:
    port = free_port()
    log_path = tmp_path / f"dashboard-{port}.log"
    command = [sys.executable, "-m", "celeriac", "-A", "coreapp", "flower", f"--port={port}",
               f"--db={db or tmp_path / 'history.db'}", *args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=cli_env(broker_url, extra=env), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    dashboard = DashboardProcess(proc, f"http://127.0.0.1:{port}", log_path)

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited {proc.returncode}: {dashboard.log()}")
        try:
            return httpx.get(f"{dashboard.url}{prefix}/healthcheck", timeout=1).text == "OK"
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, 30, 0.1, message="the dashboard to answer /healthcheck")
    except BaseException:
        dashboard.stop()  # never leave a server behind when it did not come up as expected
        raise
    return dashboard


def wait_for_task(dashboard: DashboardProcess, task_id: str, state: str, timeout: float = 20) -> dict[str, object]:
    """The task dict once the history shows ``state`` (it follows the event log, so it lags a little)."""
    found: dict[str, object] = {}

    def shown() -> bool:
        reply = dashboard.get(f"/api/task/info/{task_id}")
        if reply.status_code == 200:
            found.clear()
            found.update(reply.json())
        return found.get("state") == state

    started = time.monotonic()
    try:
        wait_until(shown, timeout, 0.1, message=f"task {task_id} to show {state}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; it shows {found.get('state')}: {found}") from None
    assert time.monotonic() - started < timeout
    return found


def wait_for_listed(dashboard: DashboardProcess, task_id: str, state: str, timeout: float = 20) -> None:
    """The history's task list (not only the task's own route, which also asks the result store)
    shows ``state``: what the Tasks page and ``/api/tasks`` show is true too."""
    listed: dict[str, object] = {}

    def shown() -> bool:
        listed.update(dashboard.get("/api/tasks", params={"limit": 1000}).json().get(task_id) or {})
        return listed.get("state") == state

    try:
        wait_until(shown, timeout, 0.1, message=f"task {task_id} listed {state}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; listed as {listed.get('state')}") from None


FLOWER_TASK_KEYS = {
    "uuid", "name", "state", "received", "sent", "started", "rejected", "succeeded", "failed", "retried",
    "revoked", "args", "kwargs", "eta", "expires", "retries", "worker", "result", "exception", "timestamp",
    "runtime", "traceback", "exchange", "routing_key", "clock", "client", "root", "root_id", "parent",
    "parent_id", "children"}
TIMES = ("received", "sent", "started", "rejected", "succeeded", "failed", "retried", "revoked", "timestamp")


def check_task_dict(task: dict[str, object]) -> None:
    """The types flower-api.md lists for every task dict, whatever the task did."""
    assert set(task) >= FLOWER_TASK_KEYS, FLOWER_TASK_KEYS - set(task)
    for key in TIMES:
        assert task[key] is None or isinstance(task[key], float), (key, task[key])
    for key in ("args", "kwargs", "result", "exception", "traceback", "eta", "expires", "worker", "name"):
        assert task[key] is None or isinstance(task[key], str), (key, task[key])
    assert isinstance(task["retries"], int) and isinstance(task["children"], list)
    assert task["runtime"] is None or isinstance(task["runtime"], float)
    assert isinstance(task["clock"], int)
    assert task["root"] == task["root_id"] and task["parent"] == task["parent_id"]


def check_flower_routes(dashboard: DashboardProcess, node: str, worker_pid: int) -> None:
    """Seed 004's three calls and the task dict, field by field, against a running worker."""
    import coreapp

    added = coreapp.add.delay(2, 3)
    failed = coreapp.fail.apply_async(("boom",))
    assert added.get(timeout=20) == 5
    failed.get(timeout=20, propagate=False)

    ok = wait_for_task(dashboard, added.id, "SUCCESS")
    check_task_dict(ok)
    assert (ok["uuid"], ok["name"], ok["args"], ok["kwargs"], ok["result"]) == \
        (added.id, "coreapp.add", "(2, 3)", "{}", "5")
    assert ok["worker"] == node and ok["retries"] == 0 and ok["exception"] is None and ok["traceback"] is None
    assert ok["received"] <= ok["started"] <= ok["succeeded"] <= ok["timestamp"]  # type: ignore[operator]
    assert ok["runtime"] >= 0 and ok["failed"] is None and ok["queue"] == "celery"  # type: ignore[operator]

    bad = wait_for_task(dashboard, failed.id, "FAILURE")
    check_task_dict(bad)
    assert bad["exception"] == "ValueError('boom')" and "ValueError: boom" in str(bad["traceback"])
    assert isinstance(bad["failed"], float) and bad["succeeded"] is None and bad["args"] == "('boom',)"

    # curl http://localhost:5555/api/task/info/<id>, /api/tasks and /api/workers, as seed 004 runs them.
    info = subprocess.run(["curl", "-s", f"{dashboard.url}/api/task/info/{added.id}"], capture_output=True,
                          timeout=30, check=True)
    assert _json(info.stdout)["result"] == "5"
    tasks = _json(subprocess.run(["curl", "-s", f"{dashboard.url}/api/tasks"], capture_output=True, timeout=30,
                                 check=True).stdout)
    assert list(tasks)[:2] == [failed.id, added.id]  # an object keyed by id, newest first
    assert all(tid == t["uuid"] for tid, t in tasks.items())
    for task in tasks.values():
        check_task_dict(task)
    workers = _json(subprocess.run(["curl", "-s", f"{dashboard.url}/api/workers"], capture_output=True,
                                   timeout=30, check=True).stdout)
    assert node in workers, workers
    one = workers[node]
    assert {"stats", "active_queues", "registered", "conf", "timestamp"} <= set(one)
    assert one["stats"]["pid"] == worker_pid and isinstance(one["timestamp"], float)
    assert "coreapp.add" in one["registered"] and [q["name"] for q in one["active_queues"]] == ["celery"]

    # Filters, sorting and paging as Flower takes them.
    assert list(dashboard.get("/api/tasks", params={"limit": 1}).json()) == [failed.id]
    assert list(dashboard.get("/api/tasks", params={"limit": 1, "offset": 1}).json()) == [added.id]
    assert list(dashboard.get("/api/tasks", params={"taskname": "coreapp.add"}).json()) == [added.id]
    assert list(dashboard.get("/api/tasks", params={"state": "FAILURE"}).json()) == [failed.id]
    assert set(dashboard.get("/api/tasks", params={"state": "All", "workername": node}).json()) >= {
        added.id, failed.id}
    assert list(dashboard.get("/api/tasks", params={"search": "boom"}).json()) == [failed.id]
    assert list(dashboard.get("/api/tasks", params={"sort_by": "name"}).json())[:1] == [added.id]
    assert list(dashboard.get("/api/tasks", params={"sort_by": "-name"}).json())[:1] == [failed.id]
    for bad_params in ({"limit": "ten"}, {"sort_by": "colour"}, {"offset": "x"}, {"received_start": "yesterday"}):
        reply = dashboard.get("/api/tasks", params=bad_params)
        assert reply.status_code == 400, (bad_params, reply.text)
    assert dashboard.get("/api/task/types").json() == {"task-types": ["coreapp.add", "coreapp.fail"]}

    missing = dashboard.get("/api/task/info/no-such-task")
    assert (missing.status_code, missing.text) == (404, "Unknown task 'no-such-task'")
    assert dashboard.get("/api/workers", params={"workername": "nobody@nowhere"}).status_code == 404
    assert dashboard.get("/api/workers", params={"status": "1"}).json()[node] is True
    detail = dashboard.get("/api/workers", params={"workername": node}).json()[node]
    assert {"scheduled", "active", "reserved", "revoked"} <= set(detail)


def _json(data: bytes) -> dict[str, dict[str, object]]:
    import json

    value = json.loads(data)
    assert isinstance(value, dict), value
    return value
