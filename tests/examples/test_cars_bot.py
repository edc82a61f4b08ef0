"""examples/cars_bot: five prioritised queues, six periodic jobs, countdown/priority, retry_policy.

What the seed (001) relies on: tasks routed to default / ai_processing / publishing /
sheets_sync / monitoring with priorities 5 / 10 / 5 / 3 / 3, a worker without -Q consuming all
five; ``apply_async(countdown=, priority=)``; ``apply_async(retry=True, retry_policy={...})``;
``AsyncResult(task_id, app=app)``; automatic retries with exponential backoff; soft/hard limits
25/30 min; prefetch 2; 100 tasks per child; six crontab jobs; ``inspect`` and ``purge``.
"""

from __future__ import annotations

import json
import time

import pytest

from celeriac.result import AsyncResult

from .examples_support import poll

APP = "cars_bot.celery_app"
QUEUES = ["ai_processing", "default", "monitoring", "publishing", "sheets_sync"]
CAMRY = "Продаю Toyota Camry 2018 года, один владелец. Цена 1 850 000 ₽"


@pytest.fixture
def bot(run_example, tmp_path, monkeypatch):
    for name, value in {"CARS_BOT_DB": tmp_path / "cars_bot.db", "CARS_BOT_CHANNEL_DIR": tmp_path / "channel",
                        "CARS_BOT_SHEETS_DIR": tmp_path / "sheets", "CARS_BOT_AI_SECONDS": "0.3"}.items():
        monkeypatch.setenv(name, str(value))  # read by the test process and inherited by workers
    return run_example("cars_bot")


def add_post(bot, text: str, created_at: float | None = None) -> int:
    database = bot.import_("cars_bot.database")
    with database.session() as conn:
        post_id = conn.execute("INSERT INTO posts (channel, text, created_at) VALUES ('@cars_msk', ?, ?)",
                               (text, created_at or time.time())).lastrowid
    return post_id


def test_routes_priorities_purge_and_a_worker_on_all_five_queues(bot):
    app = bot.import_(APP).app
    tasks = bot.import_("cars_bot.tasks")
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == (25 * 60, 30 * 60)
    assert (app.conf.worker_prefetch_multiplier, app.conf.worker_max_tasks_per_child) == (2, 100)
    assert sorted(app.queues()) == QUEUES

    # No worker yet: each task waits in its queue at its route's priority. The seed's 10 for
    # ai_processing is stored as 9: priorities are 0-9 (higher first), as on RabbitMQ.
    tasks.process_post_task.delay(1)
    tasks.publish_post_task.delay(1)
    tasks.sync_channels_task.delay()
    tasks.collect_stats_task.delay()
    ready = {q.name: [p for p, n in enumerate(q.ready) for _ in range(n)] for q in app.control.queues(QUEUES)}
    assert ready == {"ai_processing": [9], "default": [], "monitoring": [3], "publishing": [5], "sheets_sync": [3]}

    # `make celery-purge`: every queue of the app emptied.
    purged = bot.cli(APP, "purge", "-f")
    assert purged.returncode == 0, purged.stderr
    assert sum(q.ready_total for q in app.control.queues(QUEUES)) == 0

    # Within a queue, higher priority runs first: three posts queued low, top, middle.
    low, top, middle = (add_post(bot, CAMRY) for _ in range(3))
    sent = [tasks.process_post_task.apply_async(args=[low], priority=1),
            tasks.process_post_task.apply_async(args=[top]),  # the route's 10
            tasks.process_post_task.apply_async(args=[middle], priority=7)]
    bot.worker(APP, "-l", "info", "-c", "1")  # one process, so the order is the queue's
    for result in sent:
        assert result.get(timeout=15)["is_car_ad"] is True
    done = sorted(sent, key=lambda r: r.date_done)
    assert [r.get()["post_id"] for r in done] == [top, middle, low]

    active = bot.cli(APP, "inspect", "active_queues").stdout
    assert all(queue in active for queue in QUEUES), active


def test_the_seed_usage_examples(bot, tmp_path):
    """`Примеры использования` of the seed, one by one, against a worker started as it says."""
    bot.worker(APP, "-l", "info", "-c", "4")
    app = bot.import_(APP).app
    from_tasks = bot.import_("cars_bot.tasks")
    process_post_task, publish_post_task = from_tasks.process_post_task, from_tasks.publish_post_task
    post_id = add_post(bot, CAMRY)

    # Synchronously (wait for the result).
    result = process_post_task.apply_async(args=[post_id])
    assert result.get(timeout=300) == {"post_id": post_id, "is_car_ad": True, "brand": "Toyota", "year": 2018,
                                       "price": 1850000}

    # Asynchronously, in 10 s at priority 7: held by the broker until due.
    other = add_post(bot, "Kia Rio 2015, 700 000 ₽")
    delayed = process_post_task.apply_async(args=[other], countdown=10, priority=7)
    [entry] = [s for s in app.control.scheduled() if s["request"]["id"] == delayed.id]
    assert (entry["queue"], entry["priority"]) == ("ai_processing", 7)
    assert time.time() + 8 < entry["eta"] < time.time() + 11
    assert delayed.id in bot.cli(APP, "inspect", "scheduled").stdout
    assert delayed.state == "PENDING"

    # With a publish retry policy; the Bot API fails twice, the task's autoretry backs off.
    (tmp_path / "channel").mkdir()
    (tmp_path / "channel" / "outage").write_text("2")
    published = publish_post_task.apply_async(
        args=[post_id],
        retry=True,
        retry_policy={
            'max_retries': 5,
            'interval_start': 1,
            'interval_step': 2,
            'interval_max': 30,
        }
    )
    task_id = published.id

    # Reading the result by id, as the seed does.
    result = AsyncResult(task_id, app=app)
    poll(result.ready, bool, timeout=20)
    assert result.successful()
    assert result.result["text"] == "Toyota 2018 — 1 850 000 ₽"
    assert result.retries == 2
    channel = [json.loads(line) for line in (tmp_path / "channel" / "channel.jsonl").read_text().splitlines()]
    assert [m["text"] for m in channel] == ["Toyota 2018 — 1 850 000 ₽"]

    rejected = add_post(bot, "Отдам котёнка в добрые руки")
    assert process_post_task.delay(rejected).get(timeout=10)["is_car_ad"] is False
    failed = AsyncResult(publish_post_task.delay(rejected).id, app=app)
    poll(failed.ready, bool, timeout=10)
    assert not failed.successful()
    assert isinstance(failed.info, ValueError) and "not a car ad" in str(failed.info)

    # The soft limit (25 min in the app) lets the task leave the post in a known state.
    slow = add_post(bot, CAMRY)
    assert process_post_task.apply_async(args=[slow], soft_time_limit=0.1).get(timeout=10) == {
        "post_id": slow, "status": "timeout"}

    stats = bot.cli(APP, "inspect", "stats")
    assert stats.returncode == 0 and "w1@" in stats.stdout, stats.stdout + stats.stderr


def test_the_six_periodic_jobs_are_scheduled_and_each_runs(bot, tmp_path):
    listed = bot.cli(APP, "beat", "--list")
    assert listed.returncode == 0, listed.stderr
    for entry, schedule in [("sync-channels", "every minute"), ("sync-subscribers", "every 5 minutes"),
                            ("update-analytics", "every hour"), ("check-subscriptions", "at 00:00 every day"),
                            ("collect-stats", "every 15 minutes"), ("cleanup-old-results", "at 03:00 every day")]:
        line = next((row for row in listed.stdout.splitlines() if f" {entry} " in row), "")
        assert schedule in line, (entry, listed.stdout)

    bot.worker(APP, "-l", "info", "-c", "2")
    tasks = bot.import_("cars_bot.tasks")
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    (sheets / "channels.csv").write_text("username,active\n@cars_msk,1\n@auto_spb,1\n@old_channel,0\n")
    (sheets / "subscribers.csv").write_text(f"user_id,expires_at\n1,{time.time() + 86400}\n2,{time.time() - 60}\n")
    add_post(bot, "Продам гараж", created_at=time.time() - 40 * 86400)
    assert tasks.process_post_task.delay(1).get(timeout=10)["is_car_ad"] is False

    # Run each job now, as beat would at its time.
    assert tasks.sync_channels_task.delay().get(timeout=10) == {"channels": 3}
    assert tasks.sync_subscribers_task.delay().get(timeout=10) == {"subscribers": 2}
    assert tasks.check_subscriptions_task.delay().get(timeout=10) == {"expired": 1}
    assert tasks.update_analytics_task.delay().get(timeout=10) == {}
    stats = tasks.collect_stats_task.delay().get(timeout=10)
    assert stats["posts"] == {"rejected": 1} and set(stats["queues"]) >= set(QUEUES)
    assert tasks.cleanup_old_results_task.delay().get(timeout=10) == {"deleted": 1}
