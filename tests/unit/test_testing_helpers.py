"""celeriac.testing, as users' own tests use it: an in-process worker on the memory broker."""

from __future__ import annotations

import pytest

from celeriac import Celery, states
from celeriac.testing import push_raw, start_worker, wait_until


@pytest.fixture
def app(request):
    app = Celery("users-tests", broker=f"memory://{request.node.name}", set_as_current=False)
    app.conf.broker_lease_seconds = 2
    yield app
    app.close()


def test_start_worker_runs_tasks_in_process(app):
    @app.task(bind=True, max_retries=2)
    def greet(self, name):
        if self.request.retries == 0:
            raise self.retry(countdown=0.05)
        return f"hello {name} after {self.request.retries} retry"

    with start_worker(app, concurrency=2):
        assert greet.delay("ada").get(timeout=10) == "hello ada after 1 retry"
        results = [greet.delay(str(i)) for i in range(10)]
        assert [r.get(timeout=10) for r in results] == [f"hello {i} after 1 retry" for i in range(10)]


def test_push_raw_bad_bytes_are_dead_lettered_and_the_worker_goes_on(app):
    @app.task
    def ok():
        return "ok"

    with start_worker(app):
        push_raw(app.broker_url, "celery", b"\x00garbage")
        assert ok.delay().get(timeout=10) == "ok"
        wait_until(lambda: app.broker.dead_letters("celery"), 5)
    (dead,) = app.broker.dead_letters("celery")
    assert "not valid JSON" in dead.reason


def test_failures_and_states_through_the_in_process_worker(app):
    @app.task
    def boom():
        raise RuntimeError("nope")

    with start_worker(app):
        result = boom.delay()
        with pytest.raises(RuntimeError, match="nope"):
            result.get(timeout=10)
    assert result.state == states.FAILURE


def test_signed_messages_required_when_a_key_is_set(app):
    """Promise 9: with task_message_signing_key, unsigned or tampered messages never run, and
    the task id they name (vouched for by nobody) gets no result written under it."""
    app.conf.task_message_signing_key = "s3cret"
    ran = []

    @app.task
    def transfer(amount):
        ran.append(amount)
        return amount

    with start_worker(app):
        real = transfer.delay(10)
        assert real.get(timeout=10) == 10
        forged = b'{"id": "%s", "task": "%s", "args": [1000000]}' % (real.id.encode(), transfer.name.encode())
        push_raw(app.broker_url, "celery", forged)
        push_raw(app.broker_url, "celery", b'{"id": "forged-1", "task": "%s"}' % transfer.name.encode())
        wait_until(lambda: len(app.broker.dead_letters("celery")) == 2, 5)
    assert ran == [10]
    assert all("requires signatures" in dead.reason for dead in app.broker.dead_letters("celery"))
    assert app.AsyncResult(real.id).get(timeout=1) == 10
    assert app.AsyncResult("forged-1").state == states.PENDING


def test_a_replayed_signed_message_is_refused_by_the_worker(app, monkeypatch):
    """Promise 9: a signed message captured and pushed again past task_message_signing_max_age
    never runs; messages that wait on purpose (countdown, a retry's countdown) still do."""
    import time

    from celeriac import message
    from celeriac.message import Envelope

    app.conf.task_message_signing_key = "s3cret"
    app.conf.task_message_signing_max_age = 1
    ran = []

    @app.task(bind=True, max_retries=1)
    def transfer(self, amount):
        ran.append(amount)
        if amount == 3 and not self.request.retries:
            raise self.retry(countdown=1.5)
        return amount

    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 5)  # captured five seconds ago
    captured = message.encode(Envelope(id="replayed-1", task=transfer.name, args=[1000]),
                              signing_key=app.signing_key)
    monkeypatch.undo()
    with start_worker(app):
        delayed = transfer.apply_async((2,), countdown=1.5)
        retried = transfer.delay(3)
        push_raw(app.broker_url, "celery", captured)
        wait_until(lambda: app.broker.dead_letters("celery"), 5)
        assert delayed.get(timeout=10) == 2
        assert retried.get(timeout=10) == 3
    assert sorted(ran) == [2, 3, 3]
    (dead,) = app.broker.dead_letters("celery")
    assert "replay" in dead.reason


def test_redacted_kwargs_never_reach_events(app):
    """Promise 9: secrets named in task_redact_args are shown as *** in the event stream."""
    from celeriac.events import EVENT_LOG, decode_entry

    app.conf.task_redact_args = ["password"]

    @app.task
    def login(user, password):
        return user

    with start_worker(app):
        assert login.delay(user="ada", password="hunter2").get(timeout=10) == "ada"
        wait_until(lambda: any(e["type"] == "task-succeeded" for _, d in app.broker.log_read(EVENT_LOG, None, 1000)
                               for e in decode_entry(d)), 5)
    text = b"".join(d for _, d in app.broker.log_read(EVENT_LOG, None, 1000))
    assert b"hunter2" not in text and b"***" in text
