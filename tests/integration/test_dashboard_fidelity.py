"""What Flower's task dict holds that only the task-received event can tell (the send time, the
caller, the root and parent, the children), and the v1 retry with the same arguments, against a
real worker and a real ``celeriac flower``."""

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


def test_v1_retry_sends_the_same_arguments_again(app, cluster):
    import coreapp

    dashboard = cluster("dashboard", {})
    cluster("worker", {}, "-c", "1")
    first = coreapp.add.apply_async((2,), {"y": [3][0]}, priority=7)
    assert first.get(timeout=20) == 5
    wait_for_task(dashboard, first.id, "SUCCESS")
    reply = dashboard.post(f"/api/v1/tasks/{first.id}/retry")
    assert reply.status_code == 202, reply.text
    again = reply.json()["id"]
    assert again != first.id
    assert app.AsyncResult(again).get(timeout=20) == 5
    shown = wait_for_task(dashboard, again, "SUCCESS")
    assert (shown["args"], shown["kwargs"], shown["priority"]) == ("(2,)", "{'y': 3}", 7)
    missing = dashboard.post("/api/v1/tasks/no-such-task/retry")
    assert missing.status_code == 404


def test_v1_retry_refuses_a_call_redaction_hid(app, cluster):
    import coreapp

    settings = {"task_redact_args": ["x"]}
    dashboard = cluster("dashboard", settings)
    cluster("worker", settings, "-c", "1")
    hidden = coreapp.add.delay("secret", "s")
    assert hidden.get(timeout=20) == "secrets"
    wait_for_task(dashboard, hidden.id, "SUCCESS")
    reply = dashboard.post(f"/api/v1/tasks/{hidden.id}/retry")
    assert reply.status_code == 409 and "redact" in reply.json()["detail"]
