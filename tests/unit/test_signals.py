"""Celery's signals fire with Celery's senders and arguments, in eager mode and around publishing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celery, signals
from celeriac.worker import logs as worker_logs


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("signals-unit", broker="memory://signals-unit", set_as_current=False)
    app.conf.task_always_eager = True
    yield app
    app.close()


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Connect a recorder to every task signal; disconnect afterwards."""
    got: list[tuple[str, dict[str, Any]]] = []
    connected = []
    for signal in (signals.task_prerun, signals.task_postrun, signals.task_success, signals.task_failure,
                   signals.task_retry, signals.task_internal_error):
        def receiver(sender: Any = None, _name: str = signal.name, **kwargs: Any) -> None:
            got.append((_name, {"sender": sender, **kwargs}))

        signal.connect(receiver)
        connected.append((signal, receiver))
    yield got
    for signal, receiver in connected:
        signal.disconnect(receiver)


def test_eager_success_sends_prerun_success_postrun_in_order(app, heard):
    @app.task
    def add(x, y):
        return x + y

    assert add.delay(2, 3).get() == 5
    assert [name for name, _ in heard] == ["task_prerun", "task_success", "task_postrun"]
    prerun, success, postrun = (kwargs for _, kwargs in heard)
    assert prerun["sender"] is add and prerun["task"] is add and list(prerun["args"]) == [2, 3]
    assert success["sender"] is add and success["result"] == 5
    assert postrun["retval"] == 5 and postrun["state"] == "SUCCESS" and postrun["task_id"] == prerun["task_id"]


def test_eager_failure_sends_task_failure_with_exception_traceback_and_einfo(app, heard):
    @app.task
    def boom(text):
        raise ValueError(text)

    result = boom.apply(("no",))
    assert result.state == "FAILURE"
    failure = dict(heard)["task_failure"]
    assert failure["sender"] is boom and failure["task_id"] == result.id
    assert isinstance(failure["exception"], ValueError) and list(failure["args"]) == ["no"]
    assert failure["traceback"] is not None and failure["traceback"].tb_frame is not None
    assert "ValueError: no" in str(failure["einfo"]) and failure["einfo"].type is ValueError
    assert dict(heard)["task_postrun"]["state"] == "FAILURE"


def test_eager_retry_sends_task_retry_with_request_and_reason(app, heard):
    @app.task(bind=True, max_retries=2)
    def flaky(self):
        if self.request.retries < 1:
            raise self.retry(exc=ConnectionError("down"), countdown=0)
        return "up"

    assert flaky.delay().get() == "up"
    names = [name for name, _ in heard]
    assert names == ["task_prerun", "task_retry", "task_postrun", "task_prerun", "task_success", "task_postrun"]
    retry = dict(heard)["task_retry"]
    assert retry["sender"] is flaky and retry["request"].retries == 0
    assert "down" in str(retry["reason"]) and isinstance(retry["einfo"].exception, ConnectionError)


def test_a_result_json_cannot_carry_sends_task_internal_error(app, heard):
    @app.task
    def odd():
        return object()

    odd.apply()
    internal = dict(heard)["task_internal_error"]
    assert internal["sender"] is odd and "cannot encode object" in str(internal["exception"])


def test_publish_signals_carry_the_task_name_and_headers_receivers_may_extend(app):
    app.conf.task_always_eager = False
    seen: list[tuple[str, Any, dict[str, Any]]] = []

    def before(sender=None, headers=None, body=None, routing_key=None, **_):
        headers["trace_id"] = "t-1"
        seen.append(("before", sender, {"id": headers["id"], "body": body, "routing_key": routing_key}))

    def after(sender=None, headers=None, **_):
        seen.append(("after", sender, {"id": headers["id"], "trace_id": headers.get("trace_id")}))

    @app.task
    def add(x, y):
        return x + y

    signals.before_task_publish.connect(before)
    signals.after_task_publish.connect(after)
    try:
        result = add.delay(1, 2)
        many = app.send_many(add.name, [((1, 1), {}), ((2, 2), {})])
    finally:
        signals.before_task_publish.disconnect(before)
        signals.after_task_publish.disconnect(after)
    assert seen[0] == ("before", add.name, {"id": result.id, "body": ([1, 2], {}, seen[0][2]["body"][2]),
                                            "routing_key": "celery"})
    assert seen[1] == ("after", add.name, {"id": result.id, "trace_id": "t-1"})
    assert [s[2]["id"] for s in seen[2:] if s[0] == "after"] == [r.id for r in many]
    fetched = app.broker.fetch(["celery"], "c/1-0", 10, timeout=0)
    from celeriac import message

    headers = {message.decode(d.body).id: message.decode(d.body).headers for d in fetched}
    assert headers[result.id] == {"trace_id": "t-1"}


def test_a_sender_filter_by_task_name_or_object_matches_only_that_task(app):
    @app.task
    def one():
        return 1

    @app.task
    def two():
        return 2

    got: list[str] = []

    def by_name(sender=None, **_):
        got.append(f"name:{sender.name}")

    def by_object(sender=None, **_):
        got.append(f"object:{sender.name}")

    signals.task_success.connect(by_name, sender=one.name)
    signals.task_success.connect(by_object, sender=two)
    try:
        one.delay()
        two.delay()
    finally:
        signals.task_success.disconnect(by_name)
        signals.task_success.disconnect(by_object)
    assert got == [f"name:{one.name}", f"object:{two.name}"]


@pytest.fixture
def root_handlers() -> Iterator[list[logging.Handler]]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield saved
    root.handlers[:] = saved
    root.setLevel(level)


def test_worker_hijack_root_logger_false_keeps_the_users_root_handlers(root_handlers):
    mine = logging.NullHandler()
    logging.getLogger().addHandler(mine)
    worker_logs.setup("INFO", hijack=False)
    assert mine in logging.getLogger().handlers
    assert logging.getLogger().level == logging.INFO
    worker_logs.setup("INFO", hijack=True)
    assert mine not in logging.getLogger().handlers


def test_a_setup_logging_receiver_takes_logging_over(root_handlers):
    calls: list[dict[str, Any]] = []

    def configure(**kwargs: Any) -> None:
        calls.append(kwargs)

    mine = logging.NullHandler()
    logging.getLogger().addHandler(mine)
    signals.setup_logging.connect(configure)
    try:
        worker_logs.setup("DEBUG", logfile=None)
    finally:
        signals.setup_logging.disconnect(configure)
    assert calls and calls[0]["loglevel"] == "DEBUG" and "format" in calls[0]
    assert mine in logging.getLogger().handlers
