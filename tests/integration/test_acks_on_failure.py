"""task_acks_on_failure_or_timeout / Task.acks_on_failure_or_timeout against real workers.

With acks_late, True (the default) acks a task that failed or timed out once its FAILURE is
stored; False rejects the message without requeue, which celeriac maps to its dead letters
(Celery: a dead-letter exchange on RabbitMQ). The FAILURE is stored either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac import message, states
from celeriac.exceptions import RemoteTaskError
from celeriac.testing import wait_until
from conftest import read_marks


@pytest.fixture(params=["redis", "sqlite"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both brokers: Redis dead-letters what the supervisor knows only by its tag from the
    stream entry, SQLite from its table."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/broker.db"
    return str(request.getfixturevalue("redis_url"))


def _dead_by_id(app: object) -> dict[str, str]:
    """Task id -> dead-letter reason, for the default queue."""
    return {message.peek_id(d.body) or "": d.reason for d in app.broker.dead_letters("celery")}  # type: ignore[attr-defined]


def _settled(app: object) -> bool:
    stats = app.broker.stats(["celery"])[0]  # type: ignore[attr-defined]
    return stats.unacked == 0 and stats.ready_total == 0


def test_failed_task_is_dead_lettered_when_acks_on_failure_is_off_and_acked_by_default(app, start_worker):
    import coreapp

    start_worker("-c", "1")
    off = coreapp.fail_unacked.delay("boom off")
    default = coreapp.fail.delay("boom default")
    early = coreapp.fail_early_acked.delay("boom early")
    for result, text in ((off, "boom off"), (default, "boom default"), (early, "boom early")):
        with pytest.raises(RemoteTaskError, match=text):
            result.get(timeout=15)
        assert result.state == states.FAILURE
    wait_until(lambda: off.id in _dead_by_id(app) and _settled(app), 10, message="failed task dead-lettered")
    dead = _dead_by_id(app)
    assert "ValueError: boom off" in dead[off.id] and "acks_on_failure_or_timeout" in dead[off.id]
    # True (the default) acks; acks_late=False acked before the task ran.
    assert set(dead) == {off.id}
    # The dead letter is the message itself: requeued by hand, it runs (and fails) again.
    assert app.broker.retry_dead("celery") == 1
    wait_until(lambda: set(_dead_by_id(app)) == {off.id} and _settled(app), 15, message="dead-lettered again")


def test_the_setting_applies_to_every_acks_late_task(app, start_worker):
    import coreapp

    start_worker("-c", "1", env={"CELERIAC_TEST_NO_ACKS_ON_FAILURE": "1"})
    failed = coreapp.fail.delay("boom app-wide")
    ok = coreapp.add.delay(2, 3)
    assert ok.get(timeout=15) == 5
    with pytest.raises(RemoteTaskError, match="boom app-wide"):
        failed.get(timeout=15)
    wait_until(lambda: failed.id in _dead_by_id(app) and _settled(app), 10, message="dead-lettered")
    assert set(_dead_by_id(app)) == {failed.id}


def test_soft_time_limit_failure_is_dead_lettered_when_acks_on_failure_is_off(app, start_worker):
    import coreapp

    start_worker("-c", "1")
    result = coreapp.soft_limited_unacked.delay()
    with pytest.raises(RemoteTaskError, match="soft time limit"):
        result.get(timeout=15)
    assert result.state == states.FAILURE
    wait_until(lambda: result.id in _dead_by_id(app) and _settled(app), 10, message="dead-lettered")
    assert "SoftTimeLimitExceeded" in _dead_by_id(app)[result.id]


def test_hard_time_limit_kill_is_dead_lettered_when_acks_on_failure_is_off(app, start_worker, marks):
    """The supervisor kills the process; it stores FAILURE and dead-letters the message (Celery
    requeues it, which loops for a task that always overruns: docs/differences.md)."""
    import coreapp

    start_worker("-c", "2")
    off = coreapp.hard_limited_unacked.delay()
    default = coreapp.hard_limited.delay()
    for result in (off, default):
        with pytest.raises(RemoteTaskError, match="TimeLimitExceeded"):
            result.get(timeout=20)
        assert result.state == states.FAILURE
    wait_until(lambda: off.id in _dead_by_id(app) and _settled(app), 10, message="killed task dead-lettered")
    dead = _dead_by_id(app)
    assert set(dead) == {off.id}  # the default acks the killed task's message
    assert "hard time limit" in dead[off.id] and "acks_on_failure_or_timeout" in dead[off.id]
    # The supervisor knows only the message's tag: the dead letter is still the whole message,
    # and requeued by hand it runs again.
    assert app.broker.retry_dead("celery") == 1
    wait_until(lambda: len(read_marks(marks, "hard_unacked")) == 2, 15, message="requeued task ran again")


def test_asyncio_hard_limit_cancellation_is_dead_lettered_when_acks_on_failure_is_off(app, start_worker):
    import coreapp

    start_worker("-P", "asyncio", "-c", "1")
    result = coreapp.async_hard_limited_unacked.delay()
    with pytest.raises(RemoteTaskError, match="TimeLimitExceeded"):
        result.get(timeout=15)
    assert result.state == states.FAILURE
    wait_until(lambda: result.id in _dead_by_id(app) and _settled(app), 10, message="dead-lettered")
    assert "TimeLimitExceeded" in _dead_by_id(app)[result.id]
