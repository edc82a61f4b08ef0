"""The task API in eager mode and on the memory broker: what users' own unit tests rely on."""

from __future__ import annotations

import pytest

from celeriac import Celery, shared_task, states
from celeriac.exceptions import ConfigurationError, MaxRetriesExceededError, NotRegistered


@pytest.fixture
def app():
    app = Celery("unit", broker="memory://unit-tests", set_as_current=False)
    yield app
    app.close()


def test_task_name_defaults_to_module_and_function(app):
    @app.task
    def add(x, y):
        return x + y

    assert add.name == f"{__name__}.add"
    assert app.tasks[add.name] is add
    assert add(2, 3) == 5  # calling the task runs it here


def test_explicit_name_and_options(app):
    @app.task(name="add_numbers", bind=True, max_retries=5, default_retry_delay=300, rate_limit="10/m",
              queue="light", priority=2, time_limit=600, soft_time_limit=500, acks_late=True,
              reject_on_worker_lost=True, ignore_result=True, track_started=True, expires=60)
    def add(self, x, y):
        return (self.request.called_directly, x + y)

    assert add.name == "add_numbers"
    assert (add.max_retries, add.default_retry_delay, add.rate_limit) == (5, 300, "10/m")
    assert add(1, 2) == (True, 3)


def test_unknown_task_option_is_an_error(app):
    with pytest.raises(ConfigurationError, match=r"unknown option 'max_retry'.*max_retries"):
        @app.task(max_retry=3)
        def f():
            pass


def test_apply_runs_with_a_request_context(app):
    @app.task(bind=True)
    def who(self):
        return {"id": self.request.id, "retries": self.request.retries, "eager": self.request.is_eager}

    result = who.apply(task_id="abc")
    assert result.get() == {"id": "abc", "retries": 0, "eager": True}
    assert result.state == states.SUCCESS


def test_always_eager_retries_then_succeeds(app):
    app.conf.task_always_eager = True
    calls = []

    @app.task(bind=True, max_retries=3)
    def flaky(self):
        calls.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(exc=ValueError("x"), countdown=60)
        return "ok"

    assert flaky.delay().get() == "ok"
    assert calls == [0, 1, 2]


def test_eager_failure_propagates_when_configured(app):
    app.conf.update(task_always_eager=True, task_eager_propagates=True)

    @app.task
    def boom():
        raise KeyError("k")

    with pytest.raises(KeyError):
        boom.delay()


def test_eager_failure_is_a_failed_result_otherwise(app):
    @app.task
    def boom():
        raise KeyError("k")

    result = boom.apply()
    assert result.failed() and isinstance(result.result, KeyError)
    with pytest.raises(KeyError):
        result.get()


def test_retry_past_max_raises_max_retries_exceeded(app):
    @app.task(bind=True, max_retries=1)
    def again(self):
        raise self.retry(countdown=0)

    with pytest.raises(MaxRetriesExceededError):
        again.apply(throw=True)


def test_backoff_is_exponential_and_capped(app):
    @app.task(retry_backoff=2, retry_backoff_max=10, retry_jitter=False)
    def t():
        pass

    assert [t.backoff_for(n) for n in range(5)] == [2, 4, 8, 10, 10]


def test_shared_task_binds_to_the_current_app():
    @shared_task(name="shared.echo")
    def echo(x):
        return x

    app = Celery("later", broker="memory://shared", set_as_current=True)
    try:
        assert "shared.echo" in app.tasks
        assert echo.name == "shared.echo"
        assert echo.apply(("hi",)).get() == "hi"
        assert echo("direct") == "direct"
    finally:
        app.close()


def test_send_task_then_memory_broker_holds_the_message(app):
    @app.task
    def add(x, y):
        return x + y

    result = add.apply_async((1, 2), countdown=30, priority=7, queue="q1")
    stats = app.broker.stats(["q1"])[0]
    assert stats.delayed == 1
    scheduled = app.broker.scheduled(["q1"])
    assert scheduled[0].key == result.id and scheduled[0].priority == 7


def test_routes_pick_the_queue(app):
    app.conf.task_routes = {"reports.*": {"queue": "heavy"}, "mail.send": "light"}
    assert app.route("reports.daily", (), {}) == {"queue": "heavy"}
    assert app.route("mail.send", (), {}) == {"queue": "light"}
    assert app.route("other", (), {}) == {}


def test_get_task_unknown_suggests(app):
    @app.task(name="proj.add")
    def add():
        pass

    with pytest.raises(NotRegistered, match=r"unknown task 'proj.ad' \(did you mean 'proj.add'\?\)"):
        app.get_task("proj.ad")


def test_bad_call_arguments_are_clear(app):
    @app.task
    def f(x):
        return x

    with pytest.raises(ConfigurationError, match="args must be a list or tuple"):
        f.apply_async("abc")
    with pytest.raises(ConfigurationError, match="unknown option 'countdwn'"):
        f.apply_async((1,), countdwn=3)


def test_import_celeriac_stays_light():
    import subprocess
    import sys

    code = "import celeriac, sys; print(sorted(m for m in ('redis', 'fastapi', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_message_larger_than_task_message_max_bytes_is_refused_at_the_caller():
    """Workers dead-letter such a message unread, so the producer refuses it first, naming the
    task, the size and the setting; nothing is sent."""
    from celeriac import Celery
    from celeriac.exceptions import EncodeError

    app = Celery("big", broker="memory://big-messages")
    app.conf.task_message_max_bytes = 1000

    @app.task
    def store(blob):
        return len(blob)

    try:
        with pytest.raises(EncodeError, match=r"task '.*store': the message is \d+ bytes, larger than "
                                              r"task_message_max_bytes \(1000\)"):
            store.delay("x" * 2000)
        with pytest.raises(EncodeError, match="task_message_max_bytes"):
            app.send_many(store.name, [(("x" * 2000,), {})])
        assert app.broker.stats(["celery"])[0].ready_total == 0
        store.delay("small")
        assert app.broker.stats(["celery"])[0].ready_total == 1
    finally:
        app.broker.flush()
        app.close()
