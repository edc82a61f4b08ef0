"""Celery's commands for looking at an app, run as a user runs them (a subprocess each):
``report``, ``shell``, ``list bindings``, ``inspect --list``, ``control --list``, ``result --task``,
``--config`` and ``logtool``."""

from __future__ import annotations

import os
import subprocess
import sys

from celeriac.testing import wait_until
from conftest import APPS


def run_cli(*args: str, broker: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": APPS, "CELERIAC_BROKER_URL": broker}
    return subprocess.run([sys.executable, "-m", "celeriac", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def test_report_names_versions_and_hides_secrets(broker_url: str) -> None:
    secret_url = "redis://:sekrit-pass@127.0.0.1:1/0"
    out = run_cli("-A", "coreapp", "report", broker=secret_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("software -> celeriac:")
    assert "platform -> system:" in out.stdout and "broker:redis://" in out.stdout
    assert "sekrit-pass" not in out.stdout


def test_shell_has_the_app_and_its_tasks_and_reaches_a_worker(app: object, start_worker, broker_url: str) -> None:
    start_worker()
    script = "print('sum', add.delay(20, 22).get(timeout=20))\nprint('app', app.main, celery is app)\n"
    out = run_cli("-A", "coreapp", "shell", "--python", broker=broker_url, stdin=script)
    assert out.returncode == 0, out.stderr
    assert "sum 42" in out.stdout and "app coreapp True" in out.stdout
    bare = run_cli("-A", "coreapp", "shell", "--python", "--without-tasks", broker=broker_url,
                   stdin="print('has add', 'add' in dir())\n")
    assert "has add False" in bare.stdout


def test_list_bindings_shows_each_queue_and_its_routing_key(app, broker_url: str) -> None:
    import coreapp

    coreapp.add.apply_async((1, 1), queue="images")
    out = run_cli("-A", "coreapp", "list", "bindings", broker=broker_url)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[2:]]
    assert ["images", "images"] in rows and ["celery", "celery"] in rows


def test_inspect_and_control_list_their_commands(broker_url: str) -> None:
    inspect = run_cli("-A", "coreapp", "inspect", "--list", broker=broker_url)
    assert inspect.returncode == 0, inspect.stderr
    assert "query_task TASK_ID..." in inspect.stdout.splitlines() and "active" in inspect.stdout.splitlines()
    control = run_cli("-A", "coreapp", "control", "--list", broker=broker_url)
    assert control.returncode == 0, control.stderr
    assert any(line.startswith("rate_limit TASK_NAME RATE") for line in control.stdout.splitlines())
    missing = run_cli("-A", "coreapp", "inspect", broker=broker_url)
    assert missing.returncode == 2 and "missing COMMAND" in missing.stderr


def test_result_task_option(app, start_worker, broker_url: str) -> None:
    import coreapp

    start_worker()
    task_id = coreapp.add.delay(40, 2).id
    out = run_cli("-A", "coreapp", "result", task_id, "--task", "coreapp.add", "--timeout", "20", broker=broker_url)
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    wrong = run_cli("-A", "coreapp", "result", task_id, "--task", "coreapp.ad", broker=broker_url)
    assert wrong.returncode == 2 and "unknown task 'coreapp.ad'" in wrong.stderr


def test_config_option_loads_a_settings_module_over_the_app(tmp_path, broker_url: str) -> None:
    """``celeriac -A proj --config settings ...`` as Celery's: the module's settings apply (report
    shows them), multi hands the option to each node, and a missing module is one clear line."""
    (tmp_path / "auditsettings.py").write_text("task_default_queue = 'from-config'\nworker_concurrency = 3\n")
    env_path = f"{tmp_path}{os.pathsep}{APPS}"
    env = {**os.environ, "PYTHONPATH": env_path, "CELERIAC_BROKER_URL": broker_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "celeriac", *args], env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    out = cli("-A", "coreapp", "--config", "auditsettings", "report")
    assert out.returncode == 0, out.stderr
    assert "task_default_queue: 'from-config'" in out.stdout and "worker_concurrency: 3" in out.stdout
    shown = cli("-A", "coreapp", "--config", "auditsettings", "multi", "show", "w1")
    assert "--config auditsettings" in shown.stdout, shown.stdout + shown.stderr
    bad = cli("-A", "coreapp", "--config", "no_such_settings", "report")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("Error: --config 'no_such_settings'")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_logtool_reads_a_real_workers_log(app, start_worker, broker_url: str, tmp_path) -> None:
    """logtool stats/errors/traces/incomplete over the log a real worker wrote."""
    import coreapp

    worker = start_worker("-c", "1")
    ok = [coreapp.add.delay(i, i) for i in range(3)]
    failing = coreapp.app.signature("coreapp.add", ("x", 1)).delay()  # str + int: TypeError in the task
    assert [r.get(timeout=20) for r in ok] == [0, 2, 4]
    assert failing.get(timeout=20, propagate=False) is not None and failing.state == "FAILURE"
    wait_until(lambda: failing.id in worker.log() and "raised unexpected" in worker.log(), timeout=20)
    log_file = str(tmp_path / "w1.log")  # where start_worker's first worker logs
    stats = run_cli("logtool", "stats", log_file, broker=broker_url)
    assert stats.returncode == 0, stats.stderr
    assert "Task total: 4" in stats.stdout and "Task errors: 1" in stats.stdout
    assert "Task success: 3" in stats.stdout and "coreapp.add: 4" in stats.stdout
    errors = run_cli("logtool", "errors", log_file, broker=broker_url)
    assert [line for line in errors.stdout.splitlines() if line] and failing.id in errors.stdout
    traces = run_cli("logtool", "traces", log_file, broker=broker_url)
    assert "Traceback" in traces.stdout and "TypeError" in traces.stdout
    cut_line = "[2026-01-01 00:00:00,000: INFO/ForkPoolWorker-1] Task coreapp.add[abc] received\n"
    (tmp_path / "cut.log").write_text(cut_line)
    cut = run_cli("logtool", "incomplete", str(tmp_path / "cut.log"), log_file, broker=broker_url)
    assert cut.stdout.strip() == "coreapp.add[abc]"
    missing = run_cli("logtool", "stats", str(tmp_path / "nope.log"), broker=broker_url)
    assert missing.returncode != 0 and "nope.log" in missing.stderr
