"""The dashboard's HTTP API (Flower's routes and shapes, history, metrics, safety) against real
workers started through the CLI, on the tests' own redis-server; ``celeriac flower`` itself is
started as a user starts it."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytest.register_assert_rewrite("dashboard_support")

from dashboard_support import (  # noqa: E402
    DashboardProcess,
    check_flower_routes,
    check_task_dict,
    cli_env,
    start_dashboard,
    wait_for_task,
)

from celeriac import states  # noqa: E402
from celeriac.testing import WorkerProcess, wait_until  # noqa: E402

NODE = f"w1@{socket.gethostname()}"


@pytest.fixture
def dashboards(broker_url: str, tmp_path: Path) -> Iterator[Callable[..., DashboardProcess]]:
    started: list[DashboardProcess] = []

    def start(*args: str, **kwargs: object) -> DashboardProcess:
        dashboard = start_dashboard(broker_url, tmp_path, *args, **kwargs)  # type: ignore[arg-type]
        started.append(dashboard)
        return dashboard

    yield start
    for dashboard in started:
        dashboard.stop()


def test_seed_004_calls_and_flowers_task_dict_field_by_field(app, start_worker, dashboards):
    worker: WorkerProcess = start_worker("-c", "1", name="w1")
    check_flower_routes(dashboards(), NODE, worker.pid)


def test_history_survives_a_restart_and_shows_what_ran_while_it_was_down(app, start_worker, dashboards, tmp_path):
    import coreapp

    start_worker("-c", "1", name="w1")
    first = dashboards()
    before = coreapp.add.delay(1, 1)
    wait_for_task(first, before.id, "SUCCESS")
    first.stop()
    during = coreapp.add.delay(2, 2)
    assert during.get(timeout=20) == 4
    second = dashboards()
    shown = wait_for_task(second, during.id, "SUCCESS")
    assert shown["result"] == "4" and shown["worker"] == NODE
    assert list(second.get("/api/tasks").json())[:2] == [during.id, before.id]
    # A dashboard with a fresh history file reads what the log still keeps.
    fresh = dashboards(db=str(tmp_path / "other.db"))
    wait_for_task(fresh, before.id, "SUCCESS")


def test_task_info_falls_back_to_the_result_store_before_404(app, dashboards):
    dashboard = dashboards()
    app.backend.store("stored-only", states.SUCCESS, {"answer": 42}, name="coreapp.add", worker="w9@h")
    app.backend.store("failed-only", states.FAILURE, "boom", name="coreapp.fail", exc_type="ValueError",
                      exc_message=["boom"], traceback="Traceback...\nValueError: boom")
    task = dashboard.get("/api/task/info/stored-only").json()
    check_task_dict(task)
    assert (task["state"], task["result"], task["name"], task["worker"]) == \
        ("SUCCESS", "{'answer': 42}", "coreapp.add", "w9@h")
    assert isinstance(task["succeeded"], float)
    failed = dashboard.get("/api/task/info/failed-only").json()
    assert (failed["state"], failed["exception"]) == ("FAILURE", "ValueError('boom')")
    assert dashboard.get("/api/task/info/never-seen").status_code == 404


def test_sending_tasks_waiting_for_results_and_revoking(app, start_worker, dashboards):
    import coreapp

    start_worker("-c", "2", name="w1")
    dashboard = dashboards()
    sent = dashboard.post("/api/task/async-apply/coreapp.add", json={"args": [20, 22]})
    assert sent.status_code == 200 and set(sent.json()) == {"task-id", "state"}
    task_id = sent.json()["task-id"]
    done = dashboard.get(f"/api/task/result/{task_id}", params={"timeout": 20}).json()
    assert done == {"task-id": task_id, "state": "SUCCESS", "result": 42}

    applied = dashboard.post("/api/task/apply/coreapp.fail", json={"args": ["no"]}).json()
    assert applied["state"] == "FAILURE" and "ValueError" in applied["traceback"]
    assert applied["result"] == "ValueError('no')"

    # To a queue no worker reads: the worker would dead-letter an unknown name before the reply.
    by_name = dashboard.post("/api/task/send-task/not.registered.anywhere", json={"kwargs": {"a": 1},
                                                                                 "queue": "nobody"})
    assert by_name.json()["state"] == "PENDING"
    assert [s.ready_total for s in app.broker.stats(["nobody"])] == [1]

    assert dashboard.post("/api/task/async-apply/no.such.task", json={}).status_code == 404
    assert dashboard.post("/api/task/async-apply/coreapp.add", content=b"{nope").status_code == 400
    assert dashboard.post("/api/task/async-apply/coreapp.add", json={"args": "1, 2"}).status_code == 400
    unknown = dashboard.post("/api/task/async-apply/coreapp.add", json={"args": [1, 2], "colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.text
    assert dashboard.post("/api/task/async-apply/coreapp.add", json={"eta": "tomorrow"}).status_code == 400

    later = dashboard.post("/api/task/async-apply/coreapp.add", json={"args": [1, 1], "countdown": 30}).json()
    revoked = dashboard.post(f"/api/task/revoke/{later['task-id']}")
    assert revoked.json() == {"message": f"Revoked '{later['task-id']}'"}
    assert later["task-id"] in app.control.revoked()
    assert dashboard.post("/api/task/revoke/x", data={"signal": "SIGNOPE"}).status_code == 400

    running = coreapp.sleep.delay(30, "long")
    wait_for_task(dashboard, running.id, "STARTED")
    dashboard.post(f"/api/task/revoke/{running.id}", data={"terminate": "true", "signal": "SIGKILL"})
    assert wait_for_task(dashboard, running.id, "REVOKED")["revoked"]


def test_progress_meta_shows_while_the_task_runs(app, start_worker, dashboards):
    import coreapp

    start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    running = coreapp.progress.delay(20, 0.3)
    task = wait_for_task(dashboard, running.id, "PROGRESS")
    assert set(task["progress"]) == {"progress", "message"}  # type: ignore[arg-type]
    first = task["progress"]["progress"]  # type: ignore[index]
    wait_until(lambda: dashboard.get(f"/api/task/info/{running.id}").json()["progress"]["progress"] > first, 20, 0.2,
               message="progress to move")
    wait_for_task(dashboard, running.id, "SUCCESS")


def test_worker_control_routes(app, start_worker, dashboards):
    import coreapp

    worker = start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    grown = dashboard.post(f"/api/worker/pool/grow/{NODE}", params={"n": 1})
    assert grown.json() == {"message": f"Growing '{NODE}' worker's pool by 1"}
    shrunk = dashboard.post(f"/api/worker/pool/shrink/{NODE}", data={"n": "1"})
    assert shrunk.json() == {"message": f"Shrinking '{NODE}' worker's pool by 1"}
    added = dashboard.post(f"/api/worker/queue/add-consumer/{NODE}", params={"queue": "extra"})
    assert added.status_code == 200 and "extra" in added.json()["message"]
    assert coreapp.add.apply_async((3, 4), queue="extra").get(timeout=20) == 7
    cancelled = dashboard.post(f"/api/worker/queue/cancel-consumer/{NODE}", params={"queue": "extra"})
    assert cancelled.status_code == 200 and "extra" in cancelled.json()["message"]
    refused = dashboard.post(f"/api/worker/pool/autoscale/{NODE}", params={"min": 1, "max": 3})
    assert refused.status_code == 403 and refused.text.startswith(f"Failed to autoscale '{NODE}' worker: ")
    limited = dashboard.post("/api/task/rate-limit/coreapp.add", data={"workername": NODE, "ratelimit": "5/s"})
    assert limited.status_code == 200 and "5/s" in limited.json()["message"]
    assert dashboard.post("/api/task/rate-limit/coreapp.add", data={"ratelimit": "5/s"}).status_code == 400
    assert dashboard.post("/api/task/rate-limit/no.such", data={"workername": NODE, "ratelimit": "1"}).status_code \
        == 404
    assert dashboard.post("/api/worker/pool/grow/nobody@nowhere").status_code == 404
    timed = dashboard.post("/api/task/timeout/coreapp.add", data={"workername": NODE, "soft": "5", "hard": "10"})
    assert timed.status_code == 200 and "message" in timed.json()
    assert dashboard.post(f"/api/worker/shutdown/{NODE}").json() == {"message": "Shutting down!"}
    assert worker.proc is not None
    worker.proc.wait(30)


def test_purge_offline_workers_forgets_a_stopped_worker(app, start_worker, dashboards):
    worker = start_worker("-c", "1", name="w1")
    purging, keeping = dashboards("--purge_offline_workers=0"), dashboards()
    assert NODE in purging.get("/api/workers").json() and NODE in keeping.get("/api/workers").json()
    assert worker.stop() == 0
    assert NODE not in purging.get("/api/workers", params={"refresh": "true"}).json()
    assert NODE in keeping.get("/api/workers", params={"refresh": "yes"}).json()  # Flower's cache keeps it
    assert keeping.get("/api/workers", params={"status": "1"}).json().get(NODE) in (None, False)


def test_queue_lengths_and_metrics(app, start_worker, dashboards):
    import coreapp

    start_worker("-c", "1", "-Q", "celery", name="w1")
    dashboard = dashboards()
    for n in range(3):
        coreapp.add.apply_async((n, n), queue="idle")
    coreapp.add.apply_async((1, 1), queue="idle", countdown=60)
    done = coreapp.add.delay(5, 5)
    assert done.get(timeout=20) == 10
    lengths = {q["name"]: q for q in dashboard.get("/api/queues/length").json()["active_queues"]}
    assert lengths["idle"]["messages"] == 3 and lengths["idle"]["delayed"] == 1
    assert lengths["celery"]["messages"] == 0
    wait_for_task(dashboard, done.id, "SUCCESS")

    def scraped() -> str:
        return dashboard.get("/metrics").text

    wait_until(lambda: 'flower_task_runtime_seconds_count{task="coreapp.add",worker="' + NODE + '"} 1.0'
               in scraped(), 20, 0.2, message="the runtime histogram")
    body = scraped()
    assert re.search(r'flower_events_total\{task="coreapp.add",type="task-succeeded",worker="' + re.escape(NODE)
                     + r'"\} 1\.0', body), body
    assert f'flower_worker_online{{worker="{NODE}"}} 1.0' in body
    assert 'celeriac_queue_messages{priority="0",queue="idle"} 3.0' in body
    assert 'celeriac_queue_delayed{queue="idle"} 1.0' in body
    assert 'celeriac_queue_dead_letters{queue="idle"} 0.0' in body
    assert "flower_worker_number_of_currently_executing_tasks" in body
    assert "flower_task_prefetch_time_seconds" in body and "flower_worker_prefetched_tasks" in body


def test_the_history_answers_while_the_broker_is_away_and_the_rest_says_why(tmp_path):
    from redis_server import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    dashboard = start_dashboard(dead, tmp_path)
    try:
        assert dashboard.get("/api/tasks").json() == {}
        away = dashboard.get("/api/queues/length")
        assert away.status_code == 503 and away.text.startswith("Broker unavailable: ")
        assert dashboard.get("/healthcheck").text == "OK"
    finally:
        dashboard.stop()


# -- safety ------------------------------------------------------------------------------------------
def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_refuses_a_public_address_without_auth(broker_url, tmp_path):
    import sys

    out = subprocess.run([sys.executable, "-m", "celeriac", "-A", "coreapp", "flower", "--address=0.0.0.0",
                          f"--db={tmp_path / 'h.db'}"], env=cli_env(broker_url), capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "Error: refusing to serve on 0.0.0.0 without authentication: set --basic_auth=user:password "
        "(FLOWER_BASIC_AUTH) or --auth_token (FLOWER_AUTH_TOKEN), or bind --address=127.0.0.1"]
    env_out = subprocess.run([sys.executable, "-m", "celeriac", "-A", "coreapp", "flower", f"--db={tmp_path / 'h.db'}"],
                             env=cli_env(broker_url, extra={"FLOWER_ADDRESS": "0.0.0.0"}), capture_output=True,
                             text=True, timeout=30)
    assert env_out.returncode == 1 and "refusing to serve on 0.0.0.0" in env_out.stderr


def test_basic_auth_bearer_tokens_and_open_routes(dashboards):
    dashboard = dashboards(env={"FLOWER_BASIC_AUTH": "ann:s3cret,bob:pw", "FLOWER_AUTH_TOKEN": "tok-1"})
    denied = dashboard.get("/api/tasks")
    assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Basic")
    assert dashboard.get("/api/tasks", headers=_basic("ann", "wrong")).status_code == 401
    assert dashboard.get("/api/tasks", headers=_basic("bob", "pw")).status_code == 200
    assert dashboard.get("/api/tasks", headers={"Authorization": "Bearer tok-1"}).status_code == 200
    assert dashboard.get("/api/tasks", headers={"Authorization": "Bearer tok-2"}).status_code == 401
    assert dashboard.get("/healthcheck").text == "OK"
    assert dashboard.get("/metrics").status_code == 200
    csp = dashboard.get("/healthcheck").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_unauthenticated_api_as_flower_and_cross_site_posts_refused(dashboards):
    dashboard = dashboards("--basic_auth=ann:pw", env={"FLOWER_UNAUTHENTICATED_API": "true"})
    assert dashboard.get("/api/tasks").status_code == 200
    cross = dashboard.post("/api/task/revoke/x", headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    fetched = dashboard.post("/api/task/revoke/x", headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403
    same = dashboard.post("/api/task/revoke/x", headers={"Origin": dashboard.url})
    assert same.json() == {"message": "Revoked 'x'"}


def test_without_auth_only_loopback_host_names_are_answered(dashboards):
    """A page elsewhere cannot rebind its name to 127.0.0.1 and drive the dashboard (DNS rebinding)."""
    dashboard = dashboards()
    port = dashboard.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        assert dashboard.get("/api/tasks", headers={"Host": host}).status_code == 200, host
    for host in (f"evil.example:{port}", "10.1.2.3", f"127.0.0.1.evil.example:{port}"):
        assert dashboard.get("/api/tasks", headers={"Host": host}).status_code == 403, host


def test_read_only_refuses_every_change(dashboards):
    dashboard = dashboards("--read_only")
    assert dashboard.post("/api/task/revoke/x").status_code == 403
    assert dashboard.post("/api/task/async-apply/coreapp.add", json={"args": [1, 2]}).status_code == 403
    assert dashboard.get("/api/tasks").status_code == 200


def test_url_prefix(dashboards):
    dashboard = dashboards("--url_prefix=flower", prefix="/flower")
    assert dashboard.get("/flower/api/tasks").json() == {}
    assert dashboard.get("/api/tasks").status_code == 404
    assert dashboard.get("/flower/nothing/here").status_code == 404
    options = httpx.options(dashboard.url + "/flower/api/v1/tasks", timeout=30)
    assert options.status_code == 204 and options.headers["allow"] == "GET, OPTIONS, POST"
    wrong = httpx.delete(dashboard.url + "/flower/api/v1/tasks", timeout=30)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, OPTIONS, POST"


# -- the typed v1 API and the pages ------------------------------------------------------------------
def _sse(dashboard: DashboardProcess, path: str, until: Callable[[list[str]], bool], timeout: float = 30) -> list[str]:
    """The ``data:``/``event:`` lines of a server-sent event stream until ``until`` says enough."""
    import httpx

    lines: list[str] = []
    with httpx.stream("GET", dashboard.url + path, timeout=timeout) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith(("data:", "event:")):
                lines.append(line)
                if until(lines):
                    break
    return lines


def test_v1_submit_status_and_progress_stream(app, start_worker, dashboards):
    import json

    start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    sent = dashboard.post("/api/v1/tasks", json={"name": "coreapp.progress", "args": [8, 0.25]})
    assert sent.status_code == 202, sent.text
    body = sent.json()
    assert body["state"] == "PENDING" and body["url"] == f"/api/v1/tasks/{body['id']}"
    updates = [json.loads(line[5:]) for line in _sse(
        dashboard, f"/api/v1/tasks/{body['id']}/stream", lambda seen: '"state":"SUCCESS"' in seen[-1])
        if line.startswith("data:")]
    progress = [u["progress"]["progress"] for u in updates if u["state"] == "PROGRESS"]
    assert len(progress) >= 2 and progress == sorted(progress), updates
    final = updates[-1]
    assert final["state"] == "SUCCESS" and final["result"] == {"done": 8} and final["worker"] == NODE
    assert dashboard.get(f"/api/v1/tasks/{body['id']}").json()["result"] == {"done": 8}
    steps = [(step["event"], step["detail"]) for step in final["timeline"]]
    assert steps[0] == ("task-received", NODE) and steps[-1][0] == "task-succeeded"
    assert ("task-progress", "0% step 0") in steps


    assert dashboard.post("/api/v1/tasks", json={"name": "no.such.task"}).status_code == 404
    for bad in ({"name": "coreapp.add", "args": "x"}, {"name": "coreapp.add", "priority": 12},
                {"name": "coreapp.add", "priority": False}, {"name": "coreapp.add", "colour": "red"}, {}):
        assert dashboard.post("/api/v1/tasks", json=bad).status_code == 422, bad
    assert dashboard.get("/api/v1/tasks/never-seen").status_code == 404
    page = dashboard.get("/api/v1/tasks", params={"limit": 1}).json()
    assert [t["id"] for t in page["items"]] == [body["id"]] and page["next_offset"] is None
    assert dashboard.get("/api/v1/tasks", params={"sort": "colour"}).status_code == 422
    assert [w["hostname"] for w in dashboard.get("/api/v1/workers").json()] == [NODE]
    assert "celery" in {q["name"] for q in dashboard.get("/api/v1/queues").json()}
    assert dashboard.get("/api/v1/dead-letters").json() == []
    assert dashboard.get("/api/v1/schedules").status_code == 200
    revoked = dashboard.post("/api/v1/tasks/some-id/revoke", json={"terminate": False})
    assert revoked.json() == {"message": "Revoked 'some-id'"}

    spec = dashboard.get("/openapi.json").json()
    assert "/api/v1/tasks" in spec["paths"] and "/api/tasks" not in spec["paths"]
    docs = dashboard.get("/docs")
    assert "/api/v1/tasks/{task_id}/stream" in docs.text and "<script>" not in docs.text

    import coreapp

    flaky = coreapp.flaky.delay(2)
    assert flaky.get(timeout=30) == 2
    wait_until(lambda: dashboard.get(f"/api/v1/tasks/{flaky.id}").json()["state"] == "SUCCESS", 20, 0.1,
               message="the flaky task's success")
    story = dashboard.get(f"/api/v1/tasks/{flaky.id}").json()["timeline"]
    assert [s["detail"] for s in story if s["event"] == "task-retried"] == [
        "ConnectionError('attempt 0 failed'); again in 0.2 s", "ConnectionError('attempt 1 failed'); again in 0.2 s"]
    page = dashboard.get(f"/tasks/{flaky.id}").text
    assert "Timeline" in page and "ConnectionError(&#39;attempt 1 failed&#39;); again in 0.2 s" in page


def test_the_v1_api_holds_to_its_openapi_schema_under_schemathesis(app, start_worker, dashboards, tmp_path):
    """Generated requests against every v1 operation: no 5xx, only documented status codes, bodies
    that match the schema, invalid requests refused (the progress stream waits by design: left out)."""
    import sys

    import schemathesis  # noqa: F401  (the dev extra; a missing one fails loudly)
    start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    runner = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"
    out = subprocess.run([sys.executable, "-c", runner, "run", f"{dashboard.url}/openapi.json", "-n", "30",
                          "--exclude-path-regex", "stream", "--request-timeout", "10", "--seed", "1",
                          "--no-color"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "passed" in out.stdout


def test_tasks_page_escapes_what_tasks_supply_and_updates_live(app, start_worker, dashboards):
    import coreapp

    start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    hostile = "<img src=x onerror=alert(1)>"
    coreapp.add.delay(hostile, "!").get(timeout=20)
    page = wait_until(lambda: (reply := dashboard.get("/tasks")).status_code == 200 and "onerror" in reply.text
                      and reply, 20, 0.2, message="the task on the page")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "<img" not in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/dashboard.js" defer>']
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert dashboard.get("/").headers["location"] == "/overview"
    css, js = dashboard.get("/static/dashboard.css"), dashboard.get("/static/dashboard.js")
    assert css.status_code == js.status_code == 200 and "javascript" in js.headers["content-type"]
    rows = dashboard.get("/tasks/rows", params={"search": "onerror"})
    assert rows.text.count("<tr") == 1 and "&lt;img" in rows.text

    hostile_id = next(t for t in dashboard.get("/api/tasks").json().values() if "onerror" in (t["args"] or ""))["uuid"]
    detail = dashboard.get(f"/tasks/{hostile_id}")
    assert detail.status_code == 200 and "&lt;img src=x onerror=alert(1)&gt;" in detail.text
    assert "<img" not in detail.text and "data-stream" not in detail.text  # finished: nothing to follow
    missing = dashboard.get("/tasks/no-such-task")
    assert missing.status_code == 404 and "no-such-task" in missing.text

    running = coreapp.progress.delay(30, 0.2)
    wait_for_task(dashboard, running.id, "PROGRESS")
    page = dashboard.get(f"/tasks/{running.id}").text
    assert f'data-stream="/api/v1/tasks/{running.id}/stream"' in page
    assert re.search(r'<progress max="100" value="\d+" data-field="progress">', page), page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/dashboard.js" defer>']

    coreapp.add.apply_async((1, 1), queue="<b>odd</b>")  # nobody consumes it: it waits, named escaped
    workers = dashboard.get("/workers")
    assert workers.status_code == 200 and NODE in workers.text and "online" in workers.text
    assert 'data-poll="/workers/rows"' in workers.text and NODE in dashboard.get("/workers/rows").text
    queues = dashboard.get("/queues").text
    assert "&lt;b&gt;odd&lt;/b&gt;" in queues and "<b>odd" not in queues
    assert re.search(r"<td>&lt;b&gt;odd&lt;/b&gt;</td><td>1</td>", dashboard.get("/queues/rows").text)

    later = coreapp.add.apply_async((1, 2), countdown=1)
    lines = _sse(dashboard, "/events/changes", lambda seen: "event: change" in seen)
    assert "event: change" in lines
    wait_for_task(dashboard, later.id, "SUCCESS")
