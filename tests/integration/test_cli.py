"""The command line, run as a user runs it: a subprocess per command."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import APPS


def run_cli(*args: str, broker: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": APPS}
    if broker:
        env["CELERIAC_BROKER_URL"] = broker
    return subprocess.run([sys.executable, "-m", "celeriac", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("celeriac 0.")


def test_call_then_result(app, start_worker, redis_url):
    start_worker()
    sent = run_cli("-A", "coreapp", "call", "coreapp.add", "--args", "[2, 40]", broker=redis_url)
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()
    assert len(task_id) == 36
    got = run_cli("-A", "coreapp", "result", task_id, "--timeout", "10", broker=redis_url)
    assert got.returncode == 0 and got.stdout.strip() == "42"


def test_call_with_kwargs_queue_and_countdown(app, redis_url):
    sent = run_cli("-A", "coreapp", "call", "coreapp.add", "--kwargs", '{"x": 1, "y": 2}', "--queue", "other",
                   "--countdown", "60", broker=redis_url)
    assert sent.returncode == 0, sent.stderr
    assert app.broker.stats(["other"])[0].delayed == 1


def test_purge_force_reports_count(app, redis_url):
    import coreapp

    for _ in range(3):
        coreapp.add.delay(1, 1)
    coreapp.add.apply_async((1, 1), queue="kept")
    out = run_cli("-A", "coreapp", "purge", "-f", broker=redis_url)
    assert out.returncode == 0 and out.stdout.strip() == "Purged 3 messages from 1 known task queue."
    assert app.broker.stats(["kept"])[0].ready_total == 1
    out = run_cli("-A", "coreapp", "purge", "-f", "-Q", "kept", broker=redis_url)
    assert out.stdout.strip() == "Purged 1 message from 1 known task queue."


def test_purge_without_force_asks_and_aborts_without_an_answer(app, redis_url):
    import coreapp

    coreapp.add.delay(1, 1)
    out = run_cli("-A", "coreapp", "purge", broker=redis_url)
    assert out.returncode == 1 and "Are you sure" in out.stdout
    assert app.broker.stats(["celery"])[0].ready_total == 1


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def test_module_not_found_is_one_line():
    line = one_line_error(run_cli("-A", "no_such_module", "worker"))
    assert line.startswith("Error: Unable to load the app: module 'no_such_module' was not found")


def test_broker_unreachable_is_one_line_with_its_url():
    from redis_server import free_port

    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    line = one_line_error(run_cli("-A", "coreapp", "call", "coreapp.add", "--args", "[1, 2]", broker=url))
    assert "cannot reach Redis at redis://:***@127.0.0.1" in line and "hunter2" not in line


def test_unknown_task_name_is_one_line_with_a_suggestion(redis_url):
    line = one_line_error(run_cli("-A", "coreapp", "call", "coreapp.ad", broker=redis_url))
    assert line == "Error: unknown task 'coreapp.ad' (did you mean 'coreapp.add'?); pass --force to send it anyway"


def test_bad_json_arguments_are_one_line(redis_url):
    out = run_cli("-A", "coreapp", "call", "coreapp.add", "--args", "[1,", broker=redis_url)
    assert out.returncode == 2 and "--args" in out.stderr and "not JSON" in out.stderr
    assert "Traceback" not in out.stderr


def test_worker_banner_and_ready_line(app, start_worker):
    worker = start_worker("-c", "1", "-Q", "a,b")
    log = worker.log()
    assert ".> queues:      a, b" in log
    assert "coreapp.add" in log
    assert "w1@" in log and " ready." in log
