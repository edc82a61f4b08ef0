"""examples/django_shop: Django-style CELERY_* settings, @shared_task, delay/countdown, self.retry, beat.

What the seed (003) relies on: ``config_from_object(..., namespace='CELERY')`` reads the
``CELERY_*`` settings (and the 30-minute time limit is enforced); ``@shared_task`` tasks found
by autodiscovery under ``store.tasks.*``; ``delay`` and ``apply_async(countdown=)`` from a view;
``self.retry(exc=exc, countdown=60)``; three ``crontab`` beat entries; ``celeriac -A shops worker``.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from .examples_support import poll


@pytest.fixture
def shop(run_example, tmp_path, monkeypatch):
    # The test process is "Django" here: it sets the settings module and the shop's files,
    # and the workers inherit the same environment.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "shops.settings")
    monkeypatch.setenv("SHOP_DB", str(tmp_path / "db.sqlite3"))
    monkeypatch.setenv("SHOP_EMAIL_DIR", str(tmp_path / "sent_emails"))
    example = run_example("django_shop")
    example.import_("shops")  # as Django does at start-up, through shops/__init__.py
    return example


def sent_mail(tmp_path) -> list[dict]:
    path = tmp_path / "sent_emails" / "messages.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def db(tmp_path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        rows = conn.execute(sql, params).fetchall()
    conn.close()
    return rows


def test_celery_namespace_settings_load_and_the_beat_schedule_lists(shop):
    app = shop.import_("shops").celery_app
    conf = app.conf
    assert (conf.task_serializer, conf.result_serializer, conf.accept_content) == ("json", "json", ["json"])
    assert conf.task_track_started is True
    assert conf.task_time_limit == 30 * 60
    # No CELERY_BROKER_URL in the settings (REDIS_URL unset): the environment's broker is used.
    assert app.broker_url == shop.broker_url

    app.finalize()  # what the worker does: autodiscover store.tasks
    assert sorted(name for name in app.tasks if name.startswith("store.")) == [
        f"store.tasks.{name}" for name in sorted([
            "send_pending_emails", "send_order_confirmation", "send_seller_notification", "cleanup_old_carts",
            "generate_daily_report", "process_payment_callback", "send_review_reminder"])]

    listed = shop.cli("shops", "beat", "--list")
    assert listed.returncode == 0, listed.stderr
    for entry, task, schedule in [("send-pending-emails", "send_pending_emails", "every 15 minutes"),
                                  ("cleanup-old-carts", "cleanup_old_carts", "at 03:00 every day"),
                                  ("generate-daily-report", "generate_daily_report", "at 00:00 every day")]:
        assert entry in listed.stdout and f"store.tasks.{task}" in listed.stdout and schedule in listed.stdout


def test_a_new_order_mails_in_the_background_and_the_reminder_waits_in_the_broker(shop, tmp_path):
    shop.worker("shops", "-l", "info", "--concurrency=2")
    app = shop.import_("shops").celery_app
    views = shop.import_("store.views")
    tasks = shop.import_("store.tasks")

    before = time.time()
    order_id = views.create_order("buyer@example.com", "seller@example.com", 1250.0)
    mail = poll(lambda: sent_mail(tmp_path), lambda m: len(m) >= 2, timeout=15)[-1]
    assert sorted((m["subject"], m["to"][0]) for m in mail) == [
        (f"New order #{order_id}", "seller@example.com"), (f"Order #{order_id} confirmed", "buyer@example.com")]

    # The review reminder (countdown = a week) is held by the broker, not sent.
    [reminder] = [s for s in app.control.scheduled() if s["request"]["name"] == "store.tasks.send_review_reminder"]
    assert reminder["request"]["args"] == [order_id]
    assert before + 7 * 86400 - 5 < reminder["eta"] < time.time() + 7 * 86400 + 5

    # The seed's `apply_async(args=[order_id], countdown=3600)`, shortened to one second.
    sent_at = time.time()
    later = tasks.send_order_confirmation.apply_async(args=[order_id], countdown=1)
    assert later.state == "PENDING"
    assert later.get(timeout=10) == {"order_id": order_id, "sent_to": "buyer@example.com"}
    assert later.date_done.timestamp() >= sent_at + 1

    # The periodic tasks, run now by hand: pending emails go out, stale carts go away.
    db(tmp_path, "INSERT INTO pending_emails (to_email, subject, body) VALUES "
                 "('a@example.com', 'Sale', 'Everything -20%'), ('b@example.com', 'Sale', 'Everything -20%')")
    db(tmp_path, "INSERT INTO carts (owner_email, updated_at) VALUES ('old@example.com', ?), ('new@example.com', ?)",
       time.time() - 40 * 86400, time.time())
    assert tasks.send_pending_emails.delay().get(timeout=10) == 2
    assert tasks.cleanup_old_carts.delay().get(timeout=10) == 1
    assert tasks.generate_daily_report.delay().get(timeout=10) == {"orders": 1, "total": 1250.0}
    assert db(tmp_path, "SELECT owner_email FROM carts") == [("new@example.com",)]
    assert {"Sale", "Daily report"} <= {m["subject"] for m in sent_mail(tmp_path)}


def test_self_retry_with_countdown_waits_sixty_seconds(shop, tmp_path):
    shop.worker("shops", "-l", "info", "--concurrency=2")
    app = shop.import_("shops").celery_app
    views = shop.import_("store.views")
    tasks = shop.import_("store.tasks")
    order_id = views.create_order("buyer@example.com", "seller@example.com", 99.0)
    db(tmp_path, "INSERT INTO payments VALUES ('pay-settled', ?, 'settled'), ('pay-early', ?, 'processing')",
       order_id, order_id)

    assert tasks.process_payment_callback.delay("pay-settled").get(timeout=10) == {
        "payment_id": "pay-settled", "order_id": order_id, "status": "paid"}
    assert db(tmp_path, "SELECT status FROM orders WHERE id = ?", order_id) == [("paid",)]

    # The callback that came before the gateway settled: self.retry(exc=exc, countdown=60).
    early = tasks.process_payment_callback.delay("pay-early")
    retrying = time.time()
    poll(lambda: early.state, lambda state: state == "RETRY", timeout=10)
    assert "pay-early is processing" in str(early.info)
    [again] = [s for s in app.control.scheduled() if s["request"]["id"] == early.id]
    assert again["request"]["retries"] == 1
    assert retrying + 55 < again["eta"] < time.time() + 61


def test_the_settings_time_limit_is_enforced(shop):
    """CELERY_TASK_TIME_LIMIT read through the namespace and applied by the worker: 30 minutes in
    shops.settings, 1 s in the test variant DJANGO_SETTINGS_MODULE=shops_test_settings."""
    # One process, so the task after the kill must run in the process that replaced it.
    shop.worker("shops", "-l", "info", "-c", "1",
                env={"DJANGO_SETTINGS_MODULE": "shops_test_settings", "SHOP_REPORT_SECONDS": "5"})
    tasks = shop.import_("store.tasks")

    report = tasks.generate_daily_report.delay()
    started = time.time()
    with pytest.raises(Exception) as failure:
        report.get(timeout=10)
    assert type(failure.value).__name__ == "TimeLimitExceeded", failure.value
    assert time.time() - started < 4  # killed at 1 s, not after the 5 s report
    assert report.state == "FAILURE"
    assert tasks.cleanup_old_carts.delay().get(timeout=10) == 0
