"""What the dashboard shows must be true: when the capped event log trims entries the dashboard
had not read yet (here: it is paused with SIGSTOP while a real worker runs a burst), the gap is
found, logged once, counted on /metrics and shown on the overview, and reading goes on after it."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("dashboard_support")

from dashboard_support import DashboardProcess, start_dashboard  # noqa: E402

from celeriac.testing import wait_until  # noqa: E402

MAXLEN = 5   # Redis trims whole nodes (100 entries) with MAXLEN ~: the log keeps about 100 entries
BURST = 400  # one task-sent entry each, plus the worker's batches: several times what is kept


@pytest.fixture(params=["redis", "sqlite"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/broker.db"
    url: str = request.getfixturevalue("redis_url")
    return url


def gaps_metric(dashboard: DashboardProcess, name: str = "celeriac_dashboard_event_gaps_total") -> float:
    text = dashboard.get("/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert found, f"{name} is missing from /metrics"
    return float(found.group(1))


def history_ids(dashboard: DashboardProcess) -> set[str]:
    return set(history(dashboard))


def history(dashboard: DashboardProcess) -> dict[str, dict[str, object]]:
    """What the history holds (``/api/tasks`` never asks the result store, unlike task info)."""
    found: dict[str, dict[str, object]] = dashboard.get("/api/tasks", params={"limit": 10_000}).json()
    return found


@pytest.fixture
def tiny_log(app: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    conf = app.conf  # type: ignore[attr-defined]
    saved = conf.event_stream_maxlen, conf.task_send_sent_event
    conf.event_stream_maxlen, conf.task_send_sent_event = MAXLEN, True
    yield
    conf.event_stream_maxlen, conf.task_send_sent_event = saved


def test_a_trim_past_a_paused_dashboard_is_detected_counted_and_shown(app, tiny_log, start_worker, tmp_path: Path):
    import coreapp

    worker = start_worker("-c", "2", name="w1", env={"CELERIAC_TEST_EVENT_MAXLEN": str(MAXLEN)})
    dashboard = start_dashboard(str(app.conf.broker_url), tmp_path)
    try:
        first = coreapp.add.delay(0, 0)
        assert first.get(timeout=20) == 0
        wait_until(lambda: first.id in history_ids(dashboard), 20, 0.1, message="the first task in the history")
        assert gaps_metric(dashboard) == 0
        assert "events were lost" not in dashboard.get("/overview").text
        # A task the dashboard sees begin, whose end is logged (and trimmed) while it is paused.
        slow = coreapp.progress.delay(3, 0.7)  # update_state is logged at once: the history shows it running
        wait_until(lambda: history(dashboard).get(slow.id, {}).get("state") == "PROGRESS", 20, 0.05,
                   message="the slow task shown running")

        os.kill(dashboard.proc.pid, signal.SIGSTOP)
        try:
            slow.get(timeout=20)
            results = [coreapp.add.delay(i, 1) for i in range(BURST)]
            assert [r.get(timeout=60) for r in results] == [i + 1 for i in range(BURST)]
        finally:
            os.kill(dashboard.proc.pid, signal.SIGCONT)
        # After the burst, one more task: read after the gap, so the history goes on.
        last = coreapp.add.delay(7, 7)
        assert last.get(timeout=20) == 14
        # Nothing is written to the log from here on: the worker's heartbeats (one a second) would
        # otherwise trim this 5-entry log again whenever the dashboard is 5 s behind, as during the
        # restart below on a loaded machine (7-15 s), and that later gap is real, not this one again.
        worker.kill()

        wait_until(lambda: last.id in history_ids(dashboard), 30, 0.2, message="the task after the gap")
        assert gaps_metric(dashboard) == 1
        entries_missed = gaps_metric(dashboard, "celeriac_dashboard_event_entries_missed_total")
        if str(app.conf.broker_url).startswith("sqlite"):  # SQLite numbers entries: the count is known
            assert entries_missed > 0
        else:
            assert entries_missed == 0
        missing = {r.id for r in results} - history_ids(dashboard)
        assert missing, "the log kept everything: the test did not make it trim past the dashboard"
        # Its end was among the events lost; the result store, written first, says how it ended.
        wait_until(lambda: history(dashboard)[slow.id]["state"] == "SUCCESS", 10, 0.1,
                   message="the slow task repaired from the result store")
        page = dashboard.get("/overview")
        assert page.status_code == 200 and "script-src" in page.headers["content-security-policy"]
        assert "The history is incomplete" in page.text
        assert re.search(r"events were lost between \d{4}-\d\d-\d\d \d\d:\d\d:\d\d and "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \(\d+ log entr(y|ies)\))?: the history is incomplete for "
                         r"that window", page.text)
        assert "<script>" not in page.text.split("The history is incomplete")[1].split("</section>")[0]
        log = dashboard.log()
        assert log.count("dropped unread") == 1, log[-3000:]
        assert "WARNING" in log.split("dropped unread")[0].splitlines()[-1]
        assert re.search(r"after the gap, [1-9]\d* of \d+ unfinished tasks were found finished", log), log[-3000:]

        # A restart neither forgets the gap nor counts it again.
        dashboard.stop()
        dashboard = start_dashboard(str(app.conf.broker_url), tmp_path)
        assert gaps_metric(dashboard) == 1
        assert "events were lost between" in dashboard.get("/overview/body").text
    finally:
        dashboard.stop()
