"""task_redact_args: one function hides secrets by parameter name, keyword and nested key."""

from __future__ import annotations

import pytest

from celeriac import Celery, MaxRetriesExceededError
from celeriac.redaction import MAX_DEPTH, REDACTED, Redactor, parameter_names, redactor


@pytest.fixture
def app(request):
    app = Celery("redaction", broker=f"memory://{request.node.name}", set_as_current=False)
    app.conf.task_redact_args = ["password", "token"]
    yield app
    app.close()


def test_positional_arguments_are_matched_to_parameter_names():
    def login(user, password, *rest, **extra):
        pass

    args, kwargs = Redactor(["password"]).arguments(["ada", "hunter2", "more"], {"password": "x"}, login)
    assert args == ["ada", REDACTED, "more"] and kwargs == {"password": REDACTED}


def test_a_bound_task_leaves_self_out(app):
    @app.task(bind=True)
    def bound(self, user, token):
        pass

    @app.task
    def plain(token, user):
        pass

    assert parameter_names(bound) == ("user", "token")
    assert app.redactor.arguments(["ada", "t"], {}, bound)[0] == ["ada", REDACTED]
    assert app.redactor.arguments(["t", "ada"], {}, plain)[0] == [REDACTED, "ada"]


def test_nested_values_are_hidden_by_key_at_any_depth():
    value = {"auth": [{"token": "t", "ok": 1}, ("x", {"password": "p"})], "token": {"deep": 1}}
    args, kwargs = Redactor(["password", "token"]).arguments([value], {"options": value})
    expected = {"auth": [{"token": REDACTED, "ok": 1}, ("x", {"password": REDACTED})], "token": REDACTED}
    assert args == [expected] and kwargs == {"options": expected}


def test_without_the_task_only_keys_are_matched():
    assert Redactor(["password"]).arguments(["hunter2", {"password": "p"}], {}) == (
        ["hunter2", {"password": REDACTED}], {})


def test_values_too_deep_to_check_are_hidden_whole():
    deep: object = "secret"
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    args, _ = Redactor(["password"]).arguments([deep], {})
    assert "secret" not in repr(args) and REDACTED in repr(args)


def test_no_names_returns_the_arguments_untouched():
    args, kwargs = [1, {"password": "p"}], {"password": "p"}
    shown = redactor(None).arguments(args, kwargs)
    assert shown[0] is args and shown[1] is kwargs
    assert not redactor([])


def test_max_retries_error_and_extended_result_hide_secrets(app):
    @app.task(bind=True, max_retries=0)
    def charge(self, card, token):
        raise self.retry(countdown=0)

    with pytest.raises(MaxRetriesExceededError) as info:
        charge.apply(("4111", "tok-xyz"), throw=True)
    assert "tok-xyz" not in str(info.value) and "'4111', '***'" in str(info.value)

    @app.task
    def login(user, password):
        return user

    result = login.apply(("ada", "hunter2"))
    assert result.get() == "ada" and result.args == ["ada", REDACTED]


def test_task_sent_events_hide_positional_secrets(app):
    from celeriac.events import EVENT_LOG, decode_entry

    app.conf.task_send_sent_event = True

    @app.task
    def login(user, password):
        return user

    login.delay("ada", "hunter2")
    (sent,) = [e for _, d in app.broker.log_read(EVENT_LOG, None, 100) for e in decode_entry(d)]
    assert sent["type"] == "task-sent" and sent["args"] == "['ada', '***']"
