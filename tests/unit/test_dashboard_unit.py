"""Dashboard pieces that need no server: Flower's shapes, settings and the missing-extra hint."""

from __future__ import annotations

import sys

import fastapi  # noqa: F401  (the dev extra; a missing one fails loudly)
import pytest
from click.testing import CliRunner

from celeriac.cli import cli
from celeriac.dashboard.settings import Settings, is_loopback, parse_basic_auth
from celeriac.dashboard.shapes import FLOWER_TASK_KEYS, args_repr, record_from_meta, task_dict
from celeriac.exceptions import ConfigurationError
from celeriac.monitor.state import TaskRecord
from celeriac.redaction import redactor


def test_args_are_shown_as_celerys_tuple():
    assert args_repr("[2, 3]") == "(2, 3)"
    assert args_repr("[2]") == "(2,)"
    assert args_repr("[]") == "()"
    assert args_repr("[<object at 0x1>, 2]") == "(<object at 0x1>, 2)"
    assert args_repr("[[1, 2]]") == "([1, 2],)" and args_repr("[{'a': 1, 'b': 2}]") == "({'a': 1, 'b': 2},)"
    assert args_repr("['a, b']") == "('a, b',)" and args_repr('["it\'s, ok", 1]') == '("it\'s, ok", 1)'
    assert args_repr("['x]', (1, 2)]") == "('x]', (1, 2))"
    assert args_repr("(1,)") == "(1,)" and args_repr(None) is None


def test_the_task_dict_has_flowers_31_keys_and_iso_eta():
    shown = task_dict(TaskRecord("x", name="t", eta=0.0, expires=None, args="[1]", queue="q"))
    assert set(FLOWER_TASK_KEYS) <= set(shown) and len(FLOWER_TASK_KEYS) == 31
    assert shown["eta"] == "1970-01-01T00:00:00+00:00" and shown["args"] == "(1,)"
    assert shown["routing_key"] == "q" and shown["children"] == []


def test_a_result_store_record_reads_as_a_task():
    done = record_from_meta("a", {"status": "SUCCESS", "result": [1, "x"], "date_done": "2024-01-01T00:00:00+00:00",
                                  "args": [1], "kwargs": {"k": 2}, "name": "n", "worker": "w@h", "retries": 1})
    assert (done.state, done.result, done.args, done.kwargs, done.retries) == \
        ("SUCCESS", "[1, 'x']", "(1,)", "{'k': 2}", 1)
    assert done.succeeded == done.timestamp == 1704067200.0
    progress = record_from_meta("b", {"status": "PROGRESS", "result": {"progress": 40}})
    assert progress.state == "PROGRESS" and progress.progress == {"progress": 40}
    revoked = record_from_meta("c", {"status": "REVOKED", "exc_type": "TaskRevoked", "exc_message": ["expired"]})
    assert revoked.exception == "TaskRevoked('expired')"


def test_settings_refuse_a_public_address_without_auth():
    Settings(address="127.0.0.1").check()
    Settings(address="::1").check()
    Settings(address="0.0.0.0", basic_auth={"a": "b"}).check()
    Settings(address="10.0.0.5", auth_tokens=["t"]).check()
    for address in ("0.0.0.0", "", "10.0.0.5", "example.com", "::"):
        with pytest.raises(ConfigurationError, match="refusing to serve"):
            Settings(address=address).check()
    assert is_loopback("localhost") and is_loopback("127.3.2.1") and not is_loopback("")


def test_basic_auth_entries_need_a_password():
    assert parse_basic_auth("ann:pw, bob:a:b") == {"ann": "pw", "bob": "a:b"}
    with pytest.raises(ConfigurationError, match="user:password"):
        parse_basic_auth("ann")


def test_url_prefix_is_normalised():
    assert Settings(url_prefix="flower/").url_prefix == "/flower"
    assert Settings(url_prefix="/").url_prefix == ""


def test_a_missing_extra_gets_a_one_line_hint(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(cli, ["flower"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: the dashboard needs its extra (uvicorn missing): "
                                     "pip install 'celeriac[dashboard]'")


def test_the_result_store_fallback_redacts_and_completes_an_unfinished_record():
    meta = {"status": "SUCCESS", "result": 3, "date_done": "2024-01-01T00:00:00+00:00", "args": [1],
            "kwargs": {"password": "hunter2", "user": "ann"}}
    fresh = record_from_meta("a", meta, redactor(["password"]))
    assert fresh.kwargs == "{'password': '***', 'user': 'ann'}"
    started = TaskRecord("a", name="add", state="STARTED", args="[1]", kwargs="{}", started=5.0, timestamp=5.0,
                         worker="w@h")
    merged = record_from_meta("a", meta, into=started)
    assert (merged.state, merged.result, merged.started, merged.worker, merged.kwargs) == \
        ("SUCCESS", "3", 5.0, "w@h", "{}")
    assert merged.succeeded == merged.timestamp == 1704067200.0
