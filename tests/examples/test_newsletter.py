"""examples/newsletter: a Celery codebase beyond the seeds (Django-style settings with Celery
settings celeriac lacks, kombu queues, a routing function, signals, get_task_logger,
current_task, retries, a chord over chains, link_error), run with imports changed only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from .examples_support import poll


@pytest.fixture
def newsletter(run_example, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_LEDGER", str(tmp_path / "ledger.jsonl"))
    return run_example("newsletter")


def ledger(tmp_path: Path) -> list[dict]:
    path = tmp_path / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_celery_settings_celeriac_lacks_warn_and_name_themselves(newsletter, caplog):
    with caplog.at_level(logging.WARNING, logger="celeriac"):
        app = newsletter.import_("newsletter").celery_app
        app.finalize()
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "cache_backend" in said  # worker_state_db is taken quietly: revocations persist in the broker
    assert app.conf.task_acks_late is True and app.conf.worker_prefetch_multiplier == 1
    assert {"default", "mail"} <= set(app.queues())
    assert app.route("newsletter.mailing.tasks.send_email", (), {})["queue"] == "mail"
    assert app.route("newsletter.mailing.tasks.render", (), {}).get("queue") is None  # the default queue
    assert "newsletter.mailing.tasks.summarize" in app.tasks


def test_a_chord_of_chains_with_retries_sends_every_mail_and_summarizes_once(newsletter, tmp_path):
    newsletter.import_("newsletter")
    tasks = newsletter.import_("newsletter.mailing.tasks")
    newsletter.worker("newsletter", "-Q", "default,mail", "-c", "2")

    assert tasks.send_issue(7).get(timeout=60) == {"issue": 7, "sent": 4}

    events = ledger(tmp_path)
    sent = [e for e in events if e["event"] == "sent"]
    assert sorted(e["to"] for e in sent) == sorted(tasks.SUBSCRIBERS)
    assert [e["retries"] for e in sent if e["to"].startswith("bounce")] == [2]
    assert {e["task"] for e in sent} == {"newsletter.mailing.tasks.send_email"}  # current_task
    summaries = [e for e in events if e["event"] == "summary"]
    assert summaries == [dict(summaries[0], issue=7, sent=sorted(tasks.SUBSCRIBERS))]
    # Signals: every run has its prerun and postrun (4 renders, 4 + 2 retried sends, 1 summary;
    # the chord's own join task fires them too, as Celery's chord_unlock does). A task's result is
    # stored before its postrun fires, as in Celery, so the last postrun may trail the result.
    def runs(event: str) -> list[dict]:
        return [e for e in ledger(tmp_path) if e["event"] == event and e["task"].startswith("newsletter.")]

    poll(lambda: len(runs("postrun")), lambda n: n >= 11, timeout=10)
    prerun, postrun = runs("prerun"), runs("postrun")
    assert len(prerun) == len(postrun) == 11, (prerun, postrun)
    assert sum(e["state"] == "RETRY" for e in postrun) == 2
    assert any(e["event"] == "worker_ready" for e in events)


def test_link_error_runs_the_errback_and_task_failure_fires(newsletter, tmp_path):
    newsletter.import_("newsletter")
    tasks = newsletter.import_("newsletter.mailing.tasks")
    newsletter.worker("newsletter", "-Q", "default,mail")

    result = tasks.fail_loudly.apply_async(("the printer is on fire",), link_error=tasks.on_error.s())
    with pytest.raises(ValueError, match="printer is on fire"):
        result.get(timeout=30)
    seen = poll(lambda: [e for e in ledger(tmp_path) if e["event"] == "errback"], bool, timeout=20)
    errbacks = seen[-1]
    assert [e["id"] for e in errbacks] == [result.id]
    assert "printer is on fire" in errbacks[0]["error"]
    failures = [e for e in ledger(tmp_path) if e["event"] == "failure"]
    assert [e["id"] for e in failures] == [result.id]
