"""The imports a Celery codebase makes every day, with ``celery`` changed to ``celeriac``."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import types

import celeriac
from celeriac import Celery, Queue, current_app, current_task
from celeriac.utils.log import get_task_logger


def test_get_task_logger_is_a_child_of_the_task_logger():
    logger = get_task_logger("shop.tasks")
    assert logger.name == "shop.tasks"
    assert logger.parent is logging.getLogger("celeriac.task")


def test_current_app_and_current_task_follow_what_runs():
    app = Celery("imports", task_always_eager=True)
    assert current_app.main == "imports"
    assert current_app() is app
    assert not current_task

    @app.task(bind=True)
    def who(self):
        return [current_task.name, current_task.request.id == self.request.id, current_app.main]

    assert who.delay().get() == ["test_everyday_imports.who", True, "imports"]


def test_task_routes_as_a_function_and_a_list_of_functions_and_dicts():
    app = Celery("routes", broker="memory://", set_as_current=False)

    def by_argument(name, args, kwargs, options, task=None, **kw):
        return {"queue": "big"} if args and args[0] > 100 else None

    app.conf.task_routes = by_argument
    assert app.route("x.resize", (500,), {})["queue"] == "big"
    app.conf.task_routes = [by_argument, {"x.*": "images"}]
    assert app.route("x.resize", (5,), {})["queue"] == "images"
    assert app.route("x.resize", (500,), {})["queue"] == "big"


def test_a_django_settings_module_may_hold_a_router_function():
    def router(name, args, kwargs, options, task=None, **kw):
        return "routed"

    settings = types.SimpleNamespace(CELERY_TASK_ROUTES=router)
    app = Celery("dj", set_as_current=False)
    app.config_from_object(settings, namespace="CELERY")
    assert app.conf.task_routes is router


def test_celeriac_queue_objects_declare_queues_and_route_by_routing_key():
    app = Celery("q", broker="memory://", set_as_current=False)
    app.conf.task_queues = [Queue("high", routing_key="urgent", queue_arguments={"x-max-priority": 10}),
                            Queue("low")]
    app.conf.task_routes = {"x.alert": {"routing_key": "urgent"}, "x.report": {"queue": Queue("low")}}
    assert app.queues() == ["high", "low"]
    assert app.route("x.alert", (), {})["queue"] == "high"
    assert app.route("x.report", (), {})["queue"] == "low"


def test_kombu_queue_objects_are_read_when_kombu_is_installed():
    import kombu  # the dev extra; a missing one fails loudly
    app = Celery("k", broker="memory://", set_as_current=False)
    app.conf.task_queues = (kombu.Queue("emails", routing_key="mail", queue_arguments={"x-max-priority": 10}),)
    app.conf.task_routes = {"x.send": {"routing_key": "mail"}}
    assert app.queues() == ["emails"]
    assert app.route("x.send", (), {})["queue"] == "emails"


def test_the_pytest_plugin_offers_celerys_fixture_names(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("celeriac.contrib.pytest",)\n')
    (tmp_path / "test_shop.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.fixture(scope="session")
        def celery_config():
            return {"task_default_queue": "shop"}

        def test_a_task_runs_on_the_worker(celery_app, celery_worker):
            @celery_app.task
            def mul(x, y):
                return x * y

            assert celery_app.conf.task_default_queue == "shop"
            assert mul.delay(6, 7).get(timeout=10) == 42
    '''))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout


def test_public_names():
    for name in ("Queue", "current_app", "current_task"):
        assert name in celeriac.__all__


def test_the_pytest_plugin_registers_class_tasks_and_checks_the_pool(tmp_path):
    """celery_class_tasks are registered on the app and run on the worker; a pool the in-process
    worker cannot be is one clear error, not a silently different worker."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("celeriac.contrib.pytest",)\n')
    (tmp_path / "test_classes.py").write_text(textwrap.dedent('''
        import pytest
        from celeriac import Task

        class Shout(Task):
            name = "shop.shout"

            def run(self, text):
                return text.upper()

        @pytest.fixture(scope="session")
        def celery_class_tasks():
            return [Shout]

        def test_class_task_runs(celery_app, celery_worker):
            assert celery_app.tasks["shop.shout"].delay("hi").get(timeout=10) == "HI"
    '''))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_pool.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.fixture(scope="session")
        def celery_worker_pool():
            return "prefork"

        def test_prefork_is_refused(celery_app, celery_worker):
            pass
    '''))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "1 passed" in out.stdout and "1 error" in out.stdout, out.stdout + out.stderr
    assert "celery_worker_pool 'prefork'" in out.stdout
