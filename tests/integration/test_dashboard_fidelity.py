"""What Flower's task dict holds that only the task-received event can tell (the send time, the
caller, the root and parent, the children), against a real worker and a real ``celeriac flower``."""

from __future__ import annotations

import time

import pytest

pytest.register_assert_rewrite("dashboard_support")

import test_alerts  # noqa: E402
from dashboard_support import check_task_dict, wait_for_task  # noqa: E402

from celeriac.testing import wait_until  # noqa: E402

cluster = pytest.fixture(test_alerts.cluster.__wrapped__)  # type: ignore[attr-defined]


def test_the_task_dict_carries_send_time_caller_root_parent_and_children(app, cluster):
    import alertapp

    dashboard = cluster("dashboard", {})
    cluster("worker", {}, "-c", "1")
    before = time.time()
    parent = alertapp.spawn.delay(2, 3)
    child_id = parent.get(timeout=20)
    shown = wait_for_task(dashboard, parent.id, "SUCCESS")
    check_task_dict(shown)
    assert before <= shown["sent"] <= shown["received"]  # type: ignore[operator]
    assert shown["client"] and str(shown["client"]).endswith(f"@{__import__('os').uname().nodename}")
    assert (shown["root_id"], shown["parent_id"]) == (parent.id, None)
    child = wait_for_task(dashboard, child_id, "SUCCESS")
    check_task_dict(child)
    assert (child["root_id"], child["parent_id"], child["root"], child["parent"]) == \
        (parent.id, parent.id, parent.id, parent.id)
    wait_until(lambda: dashboard.get(f"/api/task/info/{parent.id}").json()["children"] == [child_id], 10, 0.1,
               message="the parent lists its child")
