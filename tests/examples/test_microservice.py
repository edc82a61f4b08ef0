"""examples/microservice: a client with no task code sends by name; a FastAPI endpoint reports status.

The seed (002) runs its worker from ``celery_worker/`` (``celery -A tasks worker``) and its
services from the project root, importing ``backend.shared.utils.celery_client``, which only
knows task *names*. These tests keep that split: the worker process imports ``tasks``; the test
process imports the client and the FastAPI service, and never the worker's module.
"""

from __future__ import annotations

import sys

from .examples_support import TestClient, poll

# The stand-ins for real work, shortened (the seed sleeps 5 s and 10 s).
FAST = {"ADD_NUMBERS_SECONDS": "0.6", "SEND_EMAIL_SECONDS": "0.2"}


def status_of(client: TestClient, task_id: str) -> dict:
    response = client.get(f"/api/v1/task_status/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_client_sends_by_name_and_the_status_endpoint_follows_the_task(run_example):
    example = run_example("microservice")
    example.env.update(FAST)
    example.worker("tasks", where="celery_worker")
    service = example.import_("user_service.app")
    client_module = example.import_("backend.shared.utils.celery_client")
    # The client sends by name only: the worker's code is nowhere in this process.
    assert "tasks" not in sys.modules
    assert "add_numbers" not in client_module.celery_app.tasks

    with TestClient(service.app) as client:
        sent = client.get("/api/v1/calculate", params={"x": 2, "y": 3}).json()
        assert sent["message"] == "Calculation task sent."
        seen = poll(lambda: status_of(client, sent["task_id"]), lambda s: s["status"] == "SUCCESS")
        statuses = [s["status"] for s in seen]
        # task_track_started: a poll during the 0.6 s sleep sees STARTED, not PENDING.
        assert "STARTED" in statuses, statuses
        assert statuses.index("STARTED") < statuses.index("SUCCESS")
        assert seen[-1] == {"task_id": sent["task_id"], "status": "SUCCESS", "result": 5}

        registered = client.post("/api/v1/users/register", json={"email": "new@example.com"}).json()
        assert registered["message"] == "User registered, welcome email is being sent."
        final = poll(lambda: status_of(client, registered["task_id"]), lambda s: s["status"] == "SUCCESS")[-1]
        assert final["result"] == {"status": "success", "email": "new@example.com"}

    # The seed's own check of what the worker knows: `celery -A tasks inspect registered`.
    out = example.cli("tasks", "inspect", "registered", where="celery_worker")
    assert out.returncode == 0, out.stderr
    assert "add_numbers" in out.stdout and "send_email_task" in out.stdout


def test_a_name_the_worker_does_not_know_is_reported_as_failure(run_example):
    """The seed warns that names must match ('tasks.add_numbers' vs 'add_numbers'). Celery
    leaves such a task PENDING forever; celeriac records FAILURE, so the endpoint says why."""
    example = run_example("microservice")
    example.env.update(FAST)
    example.worker("tasks", where="celery_worker")
    service = example.import_("user_service.app")
    celery_app = example.import_("backend.shared.utils.celery_client").celery_app

    wrong = celery_app.send_task("tasks.add_numbers", args=[1, 1])
    with TestClient(service.app) as client:
        final = poll(lambda: status_of(client, wrong.id), lambda s: s["status"] != "PENDING")[-1]
    assert final["status"] == "FAILURE"
    assert "tasks.add_numbers" in final["error"]


def test_scaled_workers_share_the_queue(run_example):
    """`docker-compose up --scale celery_worker=N`: N identical workers on one broker split the work."""
    example = run_example("microservice")
    example.env.update(FAST)
    workers = [example.worker("tasks", "-c", "1", where="celery_worker", ready=False) for _ in range(2)]
    for worker in workers:
        worker.wait_ready(30)
    client_module = example.import_("backend.shared.utils.celery_client")

    # Eight tasks: a pool process leases up to worker_prefetch_multiplier (4) at a time, so
    # one worker can hold at most half of them and the other must take the rest.
    results = [client_module.call_add_numbers(i, i) for i in range(8)]
    assert [r.get(timeout=20) for r in results] == [2 * i for i in range(8)]
    assert len({r.worker for r in results}) == 2
