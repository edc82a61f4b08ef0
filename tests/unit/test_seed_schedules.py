"""The seed projects' periodic jobs, declared as their docs write them, load and run when expected.

Only the imports change (``celery`` -> ``celeriac``); every dict below is the seed's own shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from celeriac import Celery, message
from celeriac.beat import Schedule
from celeriac.schedules import crontab

# 2024-05-01 10:07:13 UTC, a Wednesday
NOW = datetime(2024, 5, 1, 10, 7, 13, tzinfo=UTC).timestamp()


def next_runs(plan: Schedule, name: str, n: int = 2) -> list[str]:
    return [d.strftime("%Y-%m-%d %H:%M %Z") for d in plan.next_runs(name, n, after=NOW)]


@pytest.fixture
def make_app(request: pytest.FixtureRequest) -> Iterator[type[Celery]]:
    made: list[Celery] = []

    def make(main: str, **kwargs: object) -> Celery:
        app = Celery(main, broker=f"memory://seed-{request.node.name}-{len(made)}", set_as_current=False,
                     **kwargs)  # type: ignore[arg-type]
        made.append(app)
        return app

    yield make  # type: ignore[misc]
    for app in made:
        app.close()


def test_cars_bot_six_periodic_jobs(make_app) -> None:
    """001 (Telegram cars bot, timezone UTC): every minute, 5 min, 15 min, hourly, 00:00 and 03:00 daily."""
    app = make_app("cars_bot")
    app.conf.update(timezone="UTC", enable_utc=True)
    app.conf.beat_schedule = {
        "sync-channels": {"task": "cars_bot.tasks.sheets_tasks.sync_channels_task",
                          "schedule": crontab(minute="*")},
        "sync-subscribers": {"task": "cars_bot.tasks.sheets_tasks.sync_subscribers_task",
                             "schedule": crontab(minute="*/5")},
        "update-analytics": {"task": "cars_bot.tasks.monitoring_tasks.update_analytics_task",
                             "schedule": crontab(minute=0)},
        "check-subscriptions": {"task": "cars_bot.tasks.monitoring_tasks.check_subscriptions_task",
                                "schedule": crontab(hour=0, minute=0)},
        "collect-stats": {"task": "cars_bot.tasks.monitoring_tasks.collect_stats_task",
                          "schedule": crontab(minute="*/15")},
        "cleanup-old-results": {"task": "cars_bot.tasks.monitoring_tasks.cleanup_old_results_task",
                                "schedule": crontab(hour=3, minute=0)},
    }
    plan = Schedule(app)
    words = {name: entry.schedule.human() for name, entry in plan.entries().items()}
    assert words == {
        "sync-channels": "every minute", "sync-subscribers": "every 5 minutes", "update-analytics": "every hour",
        "check-subscriptions": "at 00:00 every day", "collect-stats": "every 15 minutes",
        "cleanup-old-results": "at 03:00 every day",
    }
    assert next_runs(plan, "sync-channels") == ["2024-05-01 10:08 UTC", "2024-05-01 10:09 UTC"]
    assert next_runs(plan, "sync-subscribers") == ["2024-05-01 10:10 UTC", "2024-05-01 10:15 UTC"]
    assert next_runs(plan, "collect-stats") == ["2024-05-01 10:15 UTC", "2024-05-01 10:30 UTC"]
    assert next_runs(plan, "update-analytics") == ["2024-05-01 11:00 UTC", "2024-05-01 12:00 UTC"]
    assert next_runs(plan, "check-subscriptions") == ["2024-05-02 00:00 UTC", "2024-05-03 00:00 UTC"]
    assert next_runs(plan, "cleanup-old-results") == ["2024-05-02 03:00 UTC", "2024-05-03 03:00 UTC"]
    assert {entry.missed for entry in plan.entries().values()} == {"once"}  # the documented default


def test_book_reader_float_interval_with_queue_and_priority(make_app) -> None:
    """004 (AI book reader): ``"schedule": 1800.0`` with options queue/priority, set through conf.update."""
    celery_app = make_app("bookreader", include=[])
    celery_app.conf.update(
        beat_schedule={
            "close-abandoned-reading-sessions": {
                "task": "app.tasks.close_abandoned_sessions",
                "schedule": 1800.0,  # Каждые 30 минут
                "options": {
                    "queue": "light",
                    "priority": 2,
                },
            },
        },
    )
    plan = Schedule(celery_app)
    entry = plan.get("close-abandoned-reading-sessions")
    assert entry.schedule.human() == "every 30 minutes"
    assert entry.options == {"queue": "light", "priority": 2}
    assert next_runs(plan, "close-abandoned-reading-sessions", 3) == [
        "2024-05-01 10:30 UTC", "2024-05-01 11:00 UTC", "2024-05-01 11:30 UTC"]
    # The seed's admin endpoint "run the cleanup now" is run_now: same task, same queue and priority.
    sent = plan.run_now("close-abandoned-reading-sessions")
    [delivery] = celery_app.broker.fetch(["light"], "seed/1", 10, 0)
    envelope = message.decode(delivery.body)
    assert (envelope.id, envelope.task, delivery.priority) == (sent.id, "app.tasks.close_abandoned_sessions", 2)


@pytest.mark.parametrize(("timezone", "zone_name"), [(None, "UTC"), ("Europe/Moscow", "MSK")])
def test_django_shop_crontab_entries(make_app, timezone, zone_name) -> None:
    """003 (Django shop): crontab entries in ``app.conf.beat_schedule``; with the default zone and with
    ``timezone='Europe/Moscow'`` as seed 002 sets it (the wall-clock times stay those written)."""
    app = make_app("shops")
    if timezone:
        app.config_from_object({"CELERY_TIMEZONE": timezone}, namespace="CELERY")
    app.conf.beat_schedule = {
        'send-pending-emails': {
            'task': 'store.tasks.send_pending_emails',
            'schedule': crontab(minute='*/15'),  # Каждые 15 минут
        },
        'cleanup-old-carts': {
            'task': 'store.tasks.cleanup_old_carts',
            'schedule': crontab(hour=3, minute=0),  # 3:00 AM
        },
        'generate-daily-report': {
            'task': 'store.tasks.generate_daily_report',
            'schedule': crontab(hour=0, minute=0),  # Полночь
        },
    }
    plan = Schedule(app)
    assert sorted(plan.entries()) == ["cleanup-old-carts", "generate-daily-report", "send-pending-emails"]
    assert next_runs(plan, "send-pending-emails") == [f"2024-05-01 {t} {zone_name}" for t in
                                                      (("10:15", "10:30") if not timezone else ("13:15", "13:30"))]
    assert next_runs(plan, "cleanup-old-carts") == [f"2024-05-0{d} 03:00 {zone_name}" for d in (2, 3)]
    assert next_runs(plan, "generate-daily-report") == [f"2024-05-0{d} 00:00 {zone_name}" for d in (2, 3)]


def test_add_periodic_task_in_on_after_configure_as_celery_documents(make_app) -> None:
    app = make_app("proj")

    @app.task
    def test(arg: str) -> str:
        return arg

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender: Celery, **kwargs: object) -> None:
        sender.add_periodic_task(10.0, test.s("hello"), name="add every 10")
        sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), test.s("Happy Mondays!"))

    entries = Schedule(app).entries()
    assert entries["add every 10"].args == ("hello",) and entries["add every 10"].schedule.human() == "every 10 seconds"
    monday = next(e for name, e in entries.items() if name != "add every 10")
    assert monday.task == test.name and monday.schedule.human() == "at 07:30 on Monday"
