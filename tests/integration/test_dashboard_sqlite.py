"""The dashboard on the embedded SQLite broker (the default): Flower's routes field by field and
history across a restart, against a real worker sharing the file."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("dashboard_support")

from dashboard_support import DashboardProcess, check_flower_routes, start_dashboard, wait_for_task  # noqa: E402

NODE = f"w1@{socket.gethostname()}"


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/broker.db"


@pytest.fixture
def dashboard(broker_url: str, tmp_path: Path) -> Iterator[DashboardProcess]:
    process = start_dashboard(broker_url, tmp_path)
    yield process
    process.stop()


def test_seed_004_calls_and_flowers_task_dict_on_sqlite(app, start_worker, dashboard):
    worker = start_worker("-c", "1", name="w1")
    check_flower_routes(dashboard, NODE, worker.pid)


def test_history_survives_a_restart_on_sqlite(app, start_worker, dashboard, broker_url, tmp_path):
    import coreapp

    start_worker("-c", "1", name="w1")
    before = coreapp.add.delay(1, 2)
    wait_for_task(dashboard, before.id, "SUCCESS")
    dashboard.stop()
    during = coreapp.add.delay(3, 4)
    assert during.get(timeout=20) == 7
    again = start_dashboard(broker_url, tmp_path)
    try:
        assert wait_for_task(again, during.id, "SUCCESS")["result"] == "7"
        assert again.get(f"/api/task/info/{before.id}").json()["result"] == "3"
    finally:
        again.stop()
