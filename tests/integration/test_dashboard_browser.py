"""The dashboard's pages in a real browser: Debian's headless Chromium driven by Playwright, against
``celeriac flower`` and real workers (and a real ``celeriac beat``) on the tests' own redis-server.

One browser for the module and one context per test (so each test starts without cookies).
Every page a test opens is watched for Content-Security-Policy violations, console errors and
dialogs (an ``alert`` would mean a task's argument ran as script); there must be none.
Screenshots of each page go to ``docs/screenshots/`` (referenced from ``docs/dashboard.md``) when
``CELERIAC_TEST_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("dashboard_support")

from dashboard_support import (  # noqa: E402
    DashboardProcess,
    cli_env,
    start_dashboard,
    wait_for_listed,
    wait_for_task,
)

from celeriac.testing import wait_until  # noqa: E402

CHROMIUM = os.environ.get("CELERIAC_TEST_CHROMIUM", "/usr/bin/chromium")
# The committed screenshots are refreshed on demand (CELERIAC_TEST_SCREENSHOTS=1), so a test run
# leaves the work tree as it was; otherwise they are still taken (rendering is exercised) to /tmp.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
               if os.environ.get("CELERIAC_TEST_SCREENSHOTS") else Path(tempfile.gettempdir()) / "celeriac-screenshots")
WAIT_MS = 15_000  # the longest any one browser wait may take
HOSTILE = "<img src=x onerror=alert(1)>"

# Watches each page from before its first script: violations of the policy, as the page sees them.
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    import playwright.sync_api as playwright_api  # the dev extra; a missing one fails loudly
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"no Chromium at {CHROMIUM}: run ./scripts/setup --browser (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        # No sandbox: the tests run as root in CI, where Chromium refuses to start sandboxed.
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watched:
    """A browser page and what went wrong on it."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations || []"))

    def clean(self) -> None:
        assert self.violations() == [], self.violations()
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Watched]]:
    contexts: list[Any] = []

    def new(accept_confirm: bool = True) -> Watched:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        context.set_default_timeout(WAIT_MS)
        context.add_init_script(WATCH)
        contexts.append(context)
        watched = Watched(context.new_page())

        def on_console(message: Any) -> None:
            if message.type == "error":
                watched.errors.append(message.text)

        def on_dialog(dialog: Any) -> None:
            if dialog.type == "confirm" and accept_confirm:
                dialog.accept()  # our own "are you sure?" buttons
            else:
                watched.dialogs.append(f"{dialog.type}: {dialog.message}")
                dialog.dismiss()

        watched.page.on("console", on_console)
        watched.page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
        watched.page.on("dialog", on_dialog)
        return watched

    yield new
    for context in contexts:
        context.close()


@pytest.fixture
def dashboards(broker_url: str, tmp_path: Path) -> Iterator[Callable[..., DashboardProcess]]:
    started: list[DashboardProcess] = []

    def start(*args: str, **kwargs: Any) -> DashboardProcess:
        dashboard = start_dashboard(broker_url, tmp_path, *args, **kwargs)
        started.append(dashboard)
        return dashboard

    yield start
    for dashboard in started:
        dashboard.stop()


@pytest.fixture
def sent_events(app: Any) -> Iterator[None]:
    """task-sent events from this process, so the history knows a delayed task before it runs."""
    app.conf.task_send_sent_event = True
    try:
        yield
    finally:
        app.conf.task_send_sent_event = False


def shoot(watched: Watched, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watched.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def notice(watched: Watched) -> str:
    return str(watched.page.locator(".notice").inner_text())


def test_every_page_opens_clean_and_is_photographed(app, start_worker, dashboards, open_page):
    import coreapp

    start_worker("-c", "2", name="w1")
    dashboard = dashboards()
    for i in range(6):
        coreapp.add.delay(i, i)
    failed = coreapp.fail.delay("disk full")
    flaky = coreapp.flaky.delay(2)
    done = coreapp.progress.delay(4, 0.05)
    failed.get(timeout=20, propagate=False)
    done.get(timeout=20)
    coreapp.add.apply_async((1, 1), queue="reports")  # nobody consumes it: it waits
    wait_for_task(dashboard, failed.id, "FAILURE")
    wait_for_task(dashboard, done.id, "SUCCESS")
    assert flaky.get(timeout=20) == 2
    wait_for_task(dashboard, flaky.id, "SUCCESS")

    w = open_page()
    for path, name, heading in (("/", "overview", "Overview"), ("/tasks", "tasks", "Tasks"),
                                (f"/tasks/{done.id}", "task", "coreapp.progress"),
                                ("/workers", "workers", "Workers"), ("/queues", "queues", "Queues"),
                                ("/schedules", "schedules", "Schedules"), ("/docs", "api", "HTTP API")):
        reply = w.page.goto(dashboard.url + path)
        assert reply is not None and reply.status == 200, (path, reply and reply.status)
        assert heading in w.page.locator("h1").inner_text(), path
        if name == "overview":
            assert w.page.locator("svg.chart rect.ok").count() >= 1  # this minute's successes are drawn
            assert w.page.locator("svg.chart rect.bad").count() == 1
            assert "disk full" in w.page.locator("main").inner_text()  # among the recent failures
            timings = w.page.locator("table.timings").inner_text()
            assert "coreapp.add" in timings and "coreapp.fail" in timings
        if name == "task":
            steps = w.page.locator("table.timeline").inner_text()
            assert "step 3" in steps and "succeeded" in steps and "received" in steps, steps
        shoot(w, name)
    w.page.goto(f"{dashboard.url}/tasks/{flaky.id}")
    steps = w.page.locator("table.timeline").inner_text()
    assert "attempt 0 failed" in steps and "attempt 1 failed" in steps and steps.count("retried") == 2, steps
    w.clean()


def test_a_running_tasks_progress_bar_moves_without_a_reload(app, start_worker, dashboards, open_page):
    import coreapp

    start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    running = coreapp.progress.delay(25, 0.3)
    wait_for_task(dashboard, running.id, "PROGRESS")
    w = open_page()
    w.page.goto(f"{dashboard.url}/tasks/{running.id}")
    w.page.evaluate("window.__sameDocument = true")  # gone if the page were loaded again
    bar = w.page.locator('progress[data-field="progress"]')
    first = float(bar.evaluate("e => e.value"))
    # Polled from here: wait_for_function evaluates a string in the page, which the CSP forbids.
    wait_until(lambda: float(bar.evaluate("e => e.value")) >= first + 12, 20, 0.1,
               message="the progress bar to move")
    assert w.page.evaluate("window.__sameDocument === true")
    assert "step" in w.page.locator('[data-field="message"]').inner_text()
    # The timeline grows with the task's progress events, in the same document.
    rows = w.page.locator('[data-field="timeline"] tr')
    seen = rows.count()
    wait_until(lambda: rows.count() >= seen + 2, 20, 0.1, message="the timeline to grow")
    assert "progress" in rows.last.inner_text() and w.page.evaluate("window.__sameDocument === true")
    shoot(w, "task-progress")
    w.clean()

    # The overview follows the history too: a task that finishes shows in its counts, no reload.
    w.page.goto(f"{dashboard.url}/overview")
    w.page.evaluate("window.__sameDocument = true")
    succeeded = w.page.locator('[data-field="succeeded"]')
    before = int(succeeded.inner_text())
    coreapp.add.delay(1, 1).get(timeout=20)
    wait_until(lambda: int(succeeded.inner_text()) > before, 20, 0.1, message="the overview to count it")
    assert w.page.evaluate("window.__sameDocument === true")
    w.clean()


def test_an_argument_made_of_markup_is_shown_as_text_with_no_policy_violation(app, start_worker, dashboards,
                                                                               open_page):
    import coreapp

    start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    hostile = coreapp.add.delay(HOSTILE, "!")
    assert hostile.get(timeout=20) == HOSTILE + "!"
    failing = coreapp.fail.delay(HOSTILE)  # in an exception: the overview's recent failures
    app.send_task(HOSTILE, (HOSTILE,))  # in a task name: a dead letter's reason on the queues page
    wait_for_task(dashboard, hostile.id, "SUCCESS")
    wait_for_task(dashboard, failing.id, "FAILURE")
    wait_until(lambda: sum(q["dead"] for q in dashboard.get("/api/v1/queues").json()) == 1, 20, 0.1,
               message="the dead letter")
    w = open_page(accept_confirm=False)
    for path in ("/tasks", f"/tasks/{hostile.id}", f"/tasks/{failing.id}", "/overview", "/queues"):
        w.page.goto(dashboard.url + path)
        assert HOSTILE in w.page.locator("main").inner_text(), path
        assert w.page.locator("main img").count() == 0, path
    w.page.goto(f"{dashboard.url}/tasks?search=onerror")
    assert w.page.locator("table.tasks tbody tr").count() == 3  # the add, the failure, the dead letter
    w.page.wait_for_timeout(300)  # an onerror handler would have fired by now
    w.clean()


def test_retry_revoke_and_terminate_from_the_task_page(app, sent_events, start_worker, dashboards, open_page):
    import coreapp

    start_worker("-c", "2", name="w1")
    dashboard = dashboards()
    failed = coreapp.fail.delay({"when": "now", "nested": [1, 2.5, None]})
    failed.get(timeout=20, propagate=False)
    wait_for_task(dashboard, failed.id, "FAILURE")
    w = open_page()

    w.page.goto(f"{dashboard.url}/tasks/{failed.id}")
    w.page.get_by_role("button", name="Retry with the same arguments").click()
    w.page.wait_for_url(re.compile(r"/tasks/(?!" + failed.id + r")[0-9a-f-]+\?notice="))
    assert f"a retry of {failed.id}" in notice(w)
    retried_id = w.page.url.split("/tasks/")[1].split("?")[0]
    again = wait_for_task(dashboard, retried_id, "FAILURE")
    assert again["args"] == "({'when': 'now', 'nested': [1, 2.5, None]},)" and again["name"] == "coreapp.fail"
    by_api = dashboard.post(f"/api/v1/tasks/{failed.id}/retry")  # the same retry, for scripts
    assert by_api.status_code == 202, by_api.text
    assert wait_for_task(dashboard, by_api.json()["id"], "FAILURE")["args"] == again["args"]

    later = coreapp.add.apply_async((2, 2), countdown=2)
    wait_for_task(dashboard, later.id, "PENDING")
    w.page.goto(f"{dashboard.url}/tasks/{later.id}")
    w.page.get_by_role("button", name="Revoke").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "Revoked" in notice(w)
    wait_for_task(dashboard, later.id, "REVOKED", timeout=20)
    wait_for_listed(dashboard, later.id, "REVOKED")  # no worker saw it: the history knows anyway

    sleeping = coreapp.sleep.delay(30, "long")  # started before its caller's task-sent is written
    wait_for_task(dashboard, sleeping.id, "STARTED")
    wait_for_listed(dashboard, sleeping.id, "STARTED")
    w.page.goto(f"{dashboard.url}/tasks/{sleeping.id}")
    w.page.get_by_role("button", name="Terminate").click()  # confirms, then posts
    w.page.wait_for_url(re.compile(r"notice="))
    assert "SIGTERM" in notice(w)
    wait_for_task(dashboard, sleeping.id, "REVOKED", timeout=20)
    w.clean()


def test_redacted_arguments_cannot_be_retried_and_the_page_says_why(app, start_worker, dashboards, open_page):
    import coreapp

    env = {"CELERIAC_TEST_REDACT": "y"}
    start_worker("-c", "1", name="w1", env=env)
    dashboard = dashboards(env=env)
    secret = coreapp.add.delay(1, 987654)
    assert secret.get(timeout=20) == 987655
    task = wait_for_task(dashboard, secret.id, "SUCCESS")
    assert task["args"] == "(1, '***')"
    w = open_page()
    w.page.goto(f"{dashboard.url}/tasks/{secret.id}")
    assert w.page.get_by_role("button", name="Retry").is_disabled()
    assert "redacted" in w.page.locator('[data-field="no-retry"]').inner_text()
    assert "987654" not in w.page.locator("main").inner_text()
    # The server refuses it too, whatever the page shows.
    token = w.page.locator('meta[name="csrf-token"]').get_attribute("content")
    reply = w.page.request.post(f"{dashboard.url}/tasks/{secret.id}/retry", form={"csrf_token": token or ""})
    assert reply.status == 409 and "redacted" in reply.text()
    by_api = dashboard.post(f"/api/v1/tasks/{secret.id}/retry")
    assert by_api.status_code == 409 and "redacted" in by_api.json()["detail"]
    w.clean()


def test_dead_letters_requeued_and_dropped(app, start_worker, dashboards, open_page):
    worker = start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    first = app.send_task("coreapp.not_there", (1,))
    second = app.send_task("coreapp.not_there", (2,))
    wait_until(lambda: sum(q["dead"] for q in dashboard.get("/api/v1/queues").json()) == 2, 20, 0.1,
               message="two dead letters")
    worker.proc.send_signal(signal.SIGQUIT)  # nothing consumes now: a requeued letter stays in sight
    worker.proc.wait(20)

    w = open_page()
    w.page.goto(f"{dashboard.url}/queues")
    assert w.page.locator("table.letters tbody tr").count() == 2
    assert "NotRegistered" in w.page.locator("table.letters").inner_text()
    shoot(w, "queues-dead-letters")
    row = w.page.locator("table.letters tbody tr", has_text=first.id)
    row.get_by_role("button", name="Requeue").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "Requeued 1 dead letter of celery" in notice(w)
    celery = next(q for q in dashboard.get("/api/v1/queues").json() if q["name"] == "celery")
    assert (celery["ready"], celery["dead"]) == (1, 1)
    assert w.page.locator("table.letters tbody tr").count() == 1 and second.id in w.page.locator(
        "table.letters").inner_text()
    w.page.get_by_role("button", name="Drop all").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "Dropped 1 dead letter of celery" in notice(w)
    assert "No dead letters." in w.page.locator("main").inner_text()
    w.clean()


def test_pool_grow_and_queue_consumers_from_the_workers_page(app, start_worker, dashboards, open_page):
    from celeriac.testing import WorkerProcess

    worker: WorkerProcess = start_worker("-c", "1", name="w1")
    dashboard = dashboards()
    node = next(iter(dashboard.get("/api/workers", params={"status": "1"}).json()))
    w = open_page()
    w.page.goto(f"{dashboard.url}/workers")
    controls = w.page.locator(f'tr[data-worker="{node}"]')
    controls.get_by_role("button", name="Grow +1").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "pool grown by 1" in notice(w)
    wait_until(lambda: next(x for x in dashboard.get("/api/v1/workers").json() if x["hostname"] == node)
               ["concurrency"] == 2, 20, 0.2, message="the pool to grow")

    w.page.locator(f'tr[data-worker="{node}"]').get_by_role("textbox", name="queue to consume").fill("reports")
    w.page.locator(f'tr[data-worker="{node}"]').get_by_role("button", name="Add queue").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "now consuming from reports" in notice(w)
    import coreapp

    assert coreapp.add.apply_async((3, 4), queue="reports").get(timeout=20) == 7
    wait_until(lambda: "reports" in next(x for x in dashboard.get("/api/v1/workers").json()
                                         if x["hostname"] == node)["queues"], 20, 0.2, message="a heartbeat naming it")
    w.page.goto(f"{dashboard.url}/workers")

    w.page.locator(f'tr[data-worker="{node}"]').get_by_role("button", name="Shrink -1").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "pool shrunk by 1" in notice(w)
    w.page.locator(f'tr[data-worker="{node}"]').get_by_role("button", name="Stop reports").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "stopped consuming from reports" in notice(w)
    wait_until(lambda: next(x for x in dashboard.get("/api/v1/workers").json() if x["hostname"] == node)
               ["concurrency"] == 1, 20, 0.2, message="the pool to shrink")

    assert worker.proc is not None and worker.proc.poll() is None
    w.page.locator(f'tr[data-worker="{node}"]').get_by_role("button", name="Shut down").click()  # confirmed
    w.page.wait_for_url(re.compile(r"notice="))
    assert f"Asked {node} to shut down" in notice(w)
    worker.proc.wait(20)
    w.clean()


@pytest.fixture
def beat(broker_url: str, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        with open(tmp_path / "beat.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "coreapp", "beat", "--max-interval",
                                     "0.25", "-l", "info"], env=cli_env(broker_url, marks=tmp_path / "marks"),
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started.append(proc)
        wait_until(lambda: b"beat: Starting" in (tmp_path / "beat.log").read_bytes(), 20, 0.1,
                   message="beat to start")
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_schedules_pause_resume_and_run_now_against_a_running_beat(app, start_worker, dashboards, open_page, beat,
                                                                    marks):
    from celeriac.beat import Schedule
    from conftest import read_marks

    Schedule(app).add("heartbeat", "coreapp.record", 1.0, args=["tick"])
    start_worker("-c", "1", name="w1")
    beat()
    dashboard = dashboards()
    wait_until(lambda: len(read_marks(marks, "record")) >= 2, 20, 0.1, message="beat sending every second")

    w = open_page()
    w.page.goto(f"{dashboard.url}/schedules")
    row = w.page.locator('tr[data-entry="heartbeat"]')
    assert "coreapp.record" in row.inner_text()
    # Live, as every page: beat's next sends and their outcomes show with no reload.
    first_shown = row.locator('[data-field="last"]').inner_text()
    wait_until(lambda: row.locator('[data-field="last"]').inner_text() != first_shown, 20, 0.2,
               message="the last run to move on without a reload")
    wait_until(lambda: "SUCCESS" in row.inner_text(), 20, 0.2, message="the last run's outcome")
    shoot(w, "schedules")
    row.get_by_role("button", name="Pause").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "heartbeat: paused" in notice(w)
    assert "paused" in w.page.locator('tr[data-entry="heartbeat"] [data-field="next"]').inner_text()
    time.sleep(1.5)  # a send already under way when the pause landed may still finish
    paused_at = len(read_marks(marks, "record"))
    time.sleep(3.0)
    assert len(read_marks(marks, "record")) == paused_at, "beat sent while paused"

    w.page.locator('tr[data-entry="heartbeat"]').get_by_role("button", name="Run now").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "heartbeat: sent now as" in notice(w)
    wait_until(lambda: len(read_marks(marks, "record")) == paused_at + 1, 20, 0.1, message="the run-now run")

    w.page.locator('tr[data-entry="heartbeat"]').get_by_role("button", name="Resume").click()
    w.page.wait_for_url(re.compile(r"notice="))
    assert "resumed" in notice(w)
    wait_until(lambda: len(read_marks(marks, "record")) >= paused_at + 3, 20, 0.1, message="beat sending again")
    w.clean()


def test_actions_need_the_sessions_csrf_token_and_work_under_a_url_prefix(app, sent_events, dashboards, open_page):
    later = app.send_task("coreapp.add", (1, 2), countdown=60)
    dashboard = dashboards("--url_prefix=flower", prefix="/flower")
    wait_until(lambda: dashboard.get(f"/flower/api/task/info/{later.id}").status_code == 200, 20, 0.1,
               message="the delayed task in the history")
    with httpx.Client(base_url=dashboard.url, timeout=30) as client:
        page = client.get(f"/flower/tasks/{later.id}")
        token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
        assert page.status_code == 200 and token is not None and "celeriac_session" in client.cookies
        revoke = f"/flower/tasks/{later.id}/revoke"
        assert client.post(revoke).status_code == 403
        assert client.post(revoke, data={"csrf_token": "0" * 64}).status_code == 403
        with httpx.Client(base_url=dashboard.url, timeout=30) as stranger:  # another session, this token
            stranger.get("/flower/tasks")
            assert stranger.post(revoke, data={"csrf_token": token.group(1)}).status_code == 403
        assert later.id not in app.control.revoked()
        done = client.post(revoke, data={"csrf_token": token.group(1)})
        assert done.status_code == 303 and done.headers["location"].startswith(f"/flower/tasks/{later.id}?notice=")
        assert client.post(revoke, headers={"X-CSRF-Token": token.group(1)}).status_code == 303

    other = app.send_task("coreapp.add", (3, 4), countdown=60)
    wait_until(lambda: dashboard.get(f"/flower/api/task/info/{other.id}").status_code == 200, 20, 0.1,
               message="the second delayed task in the history")
    w = open_page()
    w.page.goto(f"{dashboard.url}/flower/tasks/{other.id}?notice=Session+expired:+log+in+at+evil.example")
    assert w.page.locator(".notice").count() == 0  # a notice the dashboard did not write is not shown
    # The browser's own session cookie without the token is not enough.
    bare = w.page.request.post(f"{dashboard.url}/flower/tasks/{other.id}/revoke", form={"n": "1"})
    assert bare.status == 403 and "CSRF" in bare.text()

    w.page.get_by_role("button", name="Revoke").click()
    w.page.wait_for_url(re.compile(rf"/flower/tasks/{other.id}\?notice="))
    assert other.id in app.control.revoked()
    assert "Revoked" in notice(w)
    w.clean()

    # A delayed task the history has not seen (no task-sent events) can still be revoked by its id.
    app.conf.task_send_sent_event = False
    unseen = app.send_task("coreapp.add", (5, 6), countdown=60)
    w = open_page()
    reply = w.page.goto(f"{dashboard.url}/flower/tasks/{unseen.id}")
    assert reply is not None and reply.status == 404
    w.page.get_by_role("button", name="Revoke").click()
    w.page.wait_for_url(re.compile(rf"/flower/tasks/{unseen.id}\?notice="))
    assert "Revoked" in notice(w) and unseen.id in app.control.revoked()
    assert w.violations() == [] and w.dialogs == []  # (the 404 itself is logged as a console error)


def test_read_only_hides_every_button_and_refuses_the_posts(app, sent_events, dashboards, open_page):
    later = app.send_task("coreapp.add", (1, 2), countdown=60)
    dashboard = dashboards("--read_only")
    wait_for_task(dashboard, later.id, "PENDING")
    w = open_page()
    for path in ("/overview", f"/tasks/{later.id}", "/workers", "/queues", "/schedules"):
        w.page.goto(dashboard.url + path)
        assert w.page.locator("main button, main form[method=post]").count() == 0, path
    assert "read-only" in w.page.locator("header").inner_text()
    token = w.page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    reply = w.page.request.post(f"{dashboard.url}/tasks/{later.id}/revoke", form={"csrf_token": token})
    assert reply.status == 403 and "read-only" in reply.text()
    assert later.id not in app.control.revoked()
    w.clean()
