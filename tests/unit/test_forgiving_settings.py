"""A Django project's settings carry Celery settings celeriac does not implement: they warn and
say what celeriac does instead; a typo is still an error."""

from __future__ import annotations

import logging
import types

import pytest

from celeriac import Celery
from celeriac.celery_settings import UNIMPLEMENTED
from celeriac.config import SETTINGS
from celeriac.exceptions import ConfigurationError


def _django_settings(**values: object) -> types.ModuleType:
    module = types.ModuleType("shop_settings")
    module.DEBUG = True  # another tool's setting, no CELERY_ prefix: not ours
    for key, value in values.items():
        setattr(module, key, value)
    return module


def test_unimplemented_celery_settings_warn_with_what_celeriac_does_instead(caplog):
    app = Celery("shop", set_as_current=False)
    settings = _django_settings(CELERY_CACHE_BACKEND="default", CELERY_TASK_ACKS_LATE=True,
                                CELERY_DATABASE_ENGINE_OPTIONS={"echo": True})
    with caplog.at_level(logging.WARNING, logger="celeriac.config"):
        app.config_from_object(settings, namespace="CELERY")
    assert app.conf.task_acks_late is True
    text = caplog.text
    assert "setting cache_backend is Celery's, not celeriac's: ignored (results live in Redis or SQLite" in text
    assert "setting database_engine_options is Celery's" in text


def test_a_typo_is_still_an_error_with_the_near_name():
    app = Celery("shop", set_as_current=False)
    with pytest.raises(ConfigurationError, match=r"unknown setting 'task_acks_laet' .*'task_acks_late'"):
        app.config_from_object(_django_settings(CELERY_TASK_ACKS_LAET=True), namespace="CELERY")


def test_every_celery_setting_is_implemented_or_known_unimplemented():
    """Checked against the names Celery itself accepts (its defaults table, Celery is in the dev
    extra), not only its reference: a Django project may carry any of them."""
    from celery.app.defaults import NAMESPACES, flatten

    celerys = {name for name, _ in flatten(NAMESPACES)}
    assert not UNIMPLEMENTED & set(SETTINGS)
    assert sorted(celerys - set(SETTINGS) - UNIMPLEMENTED) == []


def test_a_database_beat_scheduler_setting_warns_that_it_is_not_read(caplog):
    app = Celery("shop", set_as_current=False)
    with caplog.at_level(logging.WARNING, logger="celeriac.config"):
        app.config_from_object(_django_settings(
            CELERY_BEAT_SCHEDULER="django_celery_beat.schedulers:DatabaseScheduler"), namespace="CELERY")
    assert "setting beat_scheduler has no effect in celeriac" in caplog.text
    assert "celeriac.beat.Schedule(app).add(...)" in caplog.text
