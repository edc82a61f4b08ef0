"""Settings: Celery's names, clear errors for unknown or ill-typed ones, env and Django namespaces."""

from __future__ import annotations

import types

import pytest

from celeriac import Celery
from celeriac.config import Settings, parse_rate
from celeriac.exceptions import ConfigurationError


def test_celery_setting_names_are_accepted():
    app = Celery("t", set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    timezone="Europe/Moscow", enable_utc=True, task_track_started=True, result_expires=3600,
                    task_time_limit=30 * 60, task_soft_time_limit=25 * 60, worker_prefetch_multiplier=2,
                    worker_max_tasks_per_child=100, task_acks_late=True, task_reject_on_worker_lost=True,
                    worker_max_memory_per_child=200_000, task_default_queue="default",
                    broker_connection_retry_on_startup=True, task_default_priority=5)
    assert app.conf.task_time_limit == 1800
    assert app.conf["worker_prefetch_multiplier"] == 2


def test_unknown_setting_names_it_and_suggests_the_near_one():
    conf = Settings()
    with pytest.raises(ConfigurationError, match=r"unknown setting .task_acks_lat. \(did you mean .task_acks_late.\?"):
        conf.task_acks_lat = True
    with pytest.raises(ConfigurationError, match="worker_prefetch_multiplier"):
        conf.update(worker_prefetch_multiplyer=1)


def test_ill_typed_setting_is_a_clear_error():
    conf = Settings()
    with pytest.raises(ConfigurationError, match=r"'task_time_limit' takes a number, not str '30'"):
        conf.task_time_limit = "30"
    with pytest.raises(ConfigurationError, match="not bool"):
        conf.worker_concurrency = True
    with pytest.raises(ConfigurationError, match="cannot be negative"):
        conf.result_expires = -1


def test_update_is_all_or_nothing():
    conf = Settings()
    with pytest.raises(ConfigurationError):
        conf.update(task_track_started=True, task_time_limit="bad")
    assert conf.task_track_started is False


def test_meaningless_celery_settings_load_unchanged(caplog):
    """broker_pool_limit and friends are accepted, kept as given (code may read them back),
    and each says in a debug line that it has no effect."""
    conf = Settings()
    with caplog.at_level("DEBUG", logger="celeriac.config"):
        conf.update(broker_pool_limit=10, beat_scheduler="x", redis_max_connections=5, worker_lost_wait=10)
    assert conf.broker_pool_limit == 10
    assert conf.worker_lost_wait == 10
    said = caplog.text
    for name in ("broker_pool_limit", "beat_scheduler", "redis_max_connections", "worker_lost_wait"):
        assert f"{name} has no effect" in said, said


def test_transport_options_are_read_and_must_be_dicts(caplog):
    """Celery's transport options load unchanged (keys celeriac has no use for, such as
    visibility_timeout, included) and are read now: they carry the Sentinel master's name."""
    conf = Settings()
    with caplog.at_level("DEBUG", logger="celeriac.config"):
        conf.update(broker_transport_options={"visibility_timeout": 43200, "master_name": "m"},
                    result_backend_transport_options={"master_name": "m"})
    assert conf.broker_transport_options == {"visibility_timeout": 43200, "master_name": "m"}
    assert "transport_options has no effect" not in caplog.text
    with pytest.raises(ConfigurationError, match="broker_transport_options"):
        conf.update(broker_transport_options="master_name=m")


def test_django_namespace_reads_celery_prefixed_names():
    settings = types.SimpleNamespace(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0", CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/0",
        CELERY_TASK_SERIALIZER="json", CELERY_ACCEPT_CONTENT=["json"], CELERY_TASK_TRACK_STARTED=True,
        CELERY_TASK_TIME_LIMIT=30 * 60, DEBUG=True, INSTALLED_APPS=["store"], SECRET_KEY="x",
    )
    app = Celery("shops", set_as_current=False)
    app.config_from_object(settings, namespace="CELERY")
    assert app.conf.task_time_limit == 1800
    assert app.conf.broker_url == "redis://127.0.0.1:6379/0"
    assert app.conf.task_track_started is True


def test_django_namespace_unknown_name_is_an_error():
    settings = types.SimpleNamespace(CELERY_TASK_TIME_LIMT=10)
    app = Celery("shops", set_as_current=False)
    with pytest.raises(ConfigurationError, match=r"task_time_limt.*task_time_limit"):
        app.config_from_object(settings, namespace="CELERY")


def test_config_from_module_and_old_names():
    module = types.ModuleType("celeryconfig")
    module.broker_url = "memory://"
    module.CELERYD_CONCURRENCY = 3
    module.helper = lambda: None  # code is not configuration
    app = Celery("t", set_as_current=False)
    app.config_from_object(module)
    assert app.conf.worker_concurrency == 3 and app.conf.broker_url == "memory://"


def test_broker_url_from_environment(monkeypatch):
    monkeypatch.delenv("CELERIAC_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/1")
    assert Celery("t", set_as_current=False).broker_url == "redis://example:6379/1"
    assert Celery("t", broker="memory://code", set_as_current=False).broker_url == "memory://code"
    monkeypatch.setenv("CELERIAC_BROKER_URL", "memory://env")
    assert Celery("t", set_as_current=False).broker_url == "memory://env"
    # As in Celery, the broker named in the environment wins over the one in code.
    assert Celery("t", broker="memory://code", set_as_current=False).broker_url == "memory://env"


def test_explicit_none_broker_still_reads_the_environment(monkeypatch):
    monkeypatch.delenv("CELERIAC_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://fallback:6379/0")
    app = Celery("t", set_as_current=False)
    app.config_from_object({"CELERY_BROKER_URL": None}, namespace="CELERY")
    assert app.broker_url == "redis://fallback:6379/0"


def test_default_broker_is_embedded_sqlite(monkeypatch, tmp_path):
    for name in ("CELERIAC_BROKER_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    app = Celery("t", set_as_current=False)
    # One file per project (the root of the one whose file made the app), in the XDG data directory.
    assert app.broker_url.startswith(f"sqlite:///{tmp_path}/celeriac/projects/")
    assert app.broker_url.endswith(".db")
    assert app.backend_url == app.broker_url


@pytest.mark.parametrize(("rate", "interval"), [("10/m", 6.0), ("10/s", 0.1), ("2/h", 1800.0), (5, 0.2),
                                                ("100", 0.01), (None, None), ("0/m", None)])
def test_parse_rate(rate, interval):
    assert parse_rate(rate) == interval


def test_bad_rate_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="unit 'd'"):
        parse_rate("10/d")
