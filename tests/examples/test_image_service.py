"""examples/image_service: FastAPI generate/status endpoints over a PROGRESS-reporting render task.

What the seed (000) relies on: the status endpoint shows PENDING, then PROGRESS with a message
and a percentage, then SUCCESS with the result or FAILURE with the error; Premium renders go to
high_priority ahead of normal_priority; retries 3 x 60 s, a 10-minute limit, results for 1 h;
the worker started with the seed's command and checked with ``inspect``.
"""

from __future__ import annotations

import sqlite3

from .examples_support import TestClient, poll

APP = "app.celery_app"
# The seed's worker command, with the command name changed.
SEED_WORKER_ARGS = ("--loglevel=info", "--concurrency=2", "--queues=high_priority,normal_priority,low_priority")


def start(run_example, tmp_path, step_seconds: float = 0.05):
    example = run_example("image_service")
    example.env.update({
        "IMAGE_STEP_SECONDS": str(step_seconds),  # a 35-step render takes ~35 s by default
        "IMAGE_UPLOAD_SECONDS": "0.1",
        "APP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sql_app.db",
    })
    return example


def status(client: TestClient, task_id: str) -> dict:
    response = client.get(f"/api/v1/generation-status/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_status_goes_pending_progress_success_with_message_and_percent(run_example, tmp_path):
    example = start(run_example, tmp_path)
    main = example.import_("app.main")
    with TestClient(main.app) as client:
        created = client.post("/api/v1/generate-image/",
                              json={"prompt": "beautiful landscape", "character": "anna", "steps": 20,
                                    "user_id": "u1"}).json()
        task_id = created["task_id"]
        assert created == {"task_id": task_id, "status": "PENDING",
                           "message": "Задача генерации изображения создана",
                           "status_url": f"/api/v1/generation-status/{task_id}"}
        # No worker yet: the task waits in its queue and says so.
        queued = status(client, task_id)
        assert queued == {"task_id": task_id, "status": "PENDING", "message": "Задача ожидает в очереди",
                          "progress": 0}

        example.worker(APP, *SEED_WORKER_ARGS)
        seen = [queued, *poll(lambda: client.get(created["status_url"]).json(),
                              lambda s: s["status"] in ("SUCCESS", "FAILURE"))]

    states = [s["status"] for s in seen]
    assert states[0] == "PENDING" and states[-1] == "SUCCESS", states
    progress = [s for s in seen if s["status"] == "PROGRESS"]
    assert len(progress) >= 5, states  # one report per sampling step and per stage
    assert all(isinstance(s["message"], str) and isinstance(s["progress"], int) for s in progress), progress
    percents = [s["progress"] for s in progress]
    assert percents == sorted(percents) and percents[0] > 0 and percents[-1] <= 90, percents
    assert {"message": "Загрузка изображения в облако", "progress": 70} in [
        {"message": s["message"], "progress": s["progress"]} for s in progress]

    final = seen[-1]
    assert final["message"] == "Генерация завершена успешно"
    result = final["result"]
    assert result["success"] is True and result["character"] == "anna"
    assert result["filename"].startswith("generated_") and result["filename"].endswith(".png")
    assert result["cloud_url"] == result["image_url"] == f"https://storage.yandexcloud.net/generated-images/{result['filename']}"

    # The chat history went through low_priority and landed in APP_DATABASE_URL's file.
    def history():
        try:
            with sqlite3.connect(tmp_path / "sql_app.db") as db:
                rows = db.execute("SELECT user_id, character, image_url FROM chat_history").fetchall()
            db.close()
            return rows
        except sqlite3.OperationalError:  # the table is not there yet
            return []

    assert poll(history, bool, timeout=10)[-1] == [("u1", "anna", result["cloud_url"])]


def test_a_failed_render_reports_failure_with_the_error(run_example, tmp_path):
    example = start(run_example, tmp_path)
    example.worker(APP, *SEED_WORKER_ARGS)
    main = example.import_("app.main")
    with TestClient(main.app) as client:
        bad = client.post("/api/v1/generate-image/",
                          json={"prompt": "landscape", "character": "anna", "steps": 500}).json()
        final = poll(lambda: status(client, bad["task_id"]), lambda s: s["status"] not in ("PENDING", "STARTED",
                                                                                            "PROGRESS"))[-1]
    assert final == {"task_id": bad["task_id"], "status": "FAILURE", "message": "Ошибка при генерации изображения",
                     "error": "steps must be between 1 and 150, got 500"}


def test_the_time_limit_stops_a_render_that_runs_over(run_example, tmp_path):
    """The app's limit is 10 minutes; the same mechanism, shortened per call to 1 s."""
    example = start(run_example, tmp_path, step_seconds=0.2)
    celery_app = example.import_("app.celery_app").celery_app
    tasks = example.import_("app.tasks")
    assert celery_app.conf.task_time_limit == 600 and celery_app.conf.result_expires == 3600
    assert (tasks.generate_image_task.max_retries, tasks.generate_image_task.default_retry_delay) == (3, 60)

    # One process, so the render after the kill must run in the process that replaced it.
    example.worker(APP, "--loglevel=info", "--concurrency=1", "--queues=high_priority,normal_priority,low_priority")
    slow = tasks.generate_image_task.apply_async(kwargs={"prompt": "x", "character": "anna", "steps": 35},
                                                 time_limit=1)
    main = example.import_("app.main")
    with TestClient(main.app) as client:
        final = poll(lambda: status(client, slow.id), lambda s: s["status"] == "FAILURE", timeout=15)[-1]
        assert final["message"] == "Ошибка при генерации изображения"
        assert "TimeLimitExceeded" in final["error"] or "time limit" in final["error"].lower(), final

        # The worker goes on serving after losing a process to the limit.
        quick = client.post("/api/v1/generate-image/", json={"prompt": "x", "character": "kate", "steps": 2}).json()
        assert poll(lambda: status(client, quick["task_id"]), lambda s: s["status"] in ("SUCCESS", "FAILURE"),
                    timeout=15)[-1]["status"] == "SUCCESS"


def test_premium_renders_go_to_high_priority_and_run_first(run_example, tmp_path):
    example = start(run_example, tmp_path, step_seconds=0.1)
    main = example.import_("app.main")
    celery_app = example.import_("app.celery_app").celery_app
    body = {"prompt": "portrait", "character": "maria", "steps": 10}
    with TestClient(main.app) as client:
        normal = [client.post("/api/v1/generate-image/", json=body).json()["task_id"] for _ in range(2)]
        premium = client.post("/api/v1/generate-image/", json={**body, "is_premium": True}).json()["task_id"]

    depth = {q.name: q.ready_total for q in celery_app.control.queues(["high_priority", "normal_priority"])}
    assert depth == {"high_priority": 1, "normal_priority": 2}

    example.worker(APP, *SEED_WORKER_ARGS)
    results = {task_id: celery_app.AsyncResult(task_id) for task_id in [*normal, premium]}
    for result in results.values():
        assert result.get(timeout=20)["character"] == "maria"
    # Two processes: the Premium render is among the first two taken, so it finishes before
    # the second normal render, which could only start once one of the first two was done.
    assert results[premium].date_done < max(results[n].date_done for n in normal)

    # The seed's checks: `celery -A app.celery_app inspect ping / registered / active_queues`.
    ping = example.cli(APP, "inspect", "ping")
    assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
    registered = example.cli(APP, "inspect", "registered").stdout
    for name in ("generate_image_task", "upload_to_cloud_task", "send_email_task", "save_chat_history_task"):
        assert f"app.tasks.{name}" in registered, registered
    queues = example.cli(APP, "inspect", "active_queues").stdout
    assert all(q in queues for q in ("high_priority", "normal_priority", "low_priority")), queues
