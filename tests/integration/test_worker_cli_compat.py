"""Celery's worker command line, with real processes: default names that scale on one host,
multi, --detach/--pidfile/--logfile, --autoscale, time limits, and the options that mean
nothing here saying so."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from celeriac.exceptions import RemoteTaskError
from celeriac.testing import wait_for, wait_until, worker_process
from conftest import APPS


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/broker.db"


def _cli(*args: str, cwd: Path, broker_url: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELERIAC_BROKER_URL": broker_url,
           "PYTHONPATH": os.pathsep.join([APPS, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "celeriac", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_two_workers_with_the_default_name_both_run(app, broker_url, tmp_path):
    """No -n on one host, twice (docker compose --scale, systemd templates): the second warns and
    runs, and both take tasks."""
    import coreapp

    workers = []
    try:
        for i in range(2):
            workers.append(worker_process("coreapp", "-c", "1", broker_url=broker_url, pythonpath=[APPS],
                                          log_path=str(tmp_path / f"w{i}.log")).wait_ready())
        assert "is registered as running" in workers[1].log()
        results = [coreapp.whoami.delay(0.4, f"t{i}") for i in range(6)]
        for r in results:
            wait_for(r, 30)
        started = (tmp_path / "marks" / "started").read_text().splitlines()
        pids = {line.split()[-1] for line in started}
        assert len(pids) == 2, started  # both workers' pool processes ran tasks
    finally:
        for w in workers:
            w.stop()


def test_a_worker_without_an_app_refuses_in_one_line(tmp_path, broker_url):
    out = _cli("worker", cwd=tmp_path, broker_url=broker_url, timeout=30)
    assert out.returncode == 2
    assert "the worker needs your app: celeriac -A proj worker" in out.stderr


@pytest.mark.parametrize("pool", ["eventlet", "gevent"])
def test_green_pools_name_what_to_use_instead(tmp_path, broker_url, pool):
    out = _cli("-A", "coreapp", "worker", "-P", pool, cwd=tmp_path, broker_url=broker_url, timeout=30)
    assert out.returncode == 2
    assert f"celeriac has no {pool} pool: use -P threads" in out.stderr


def test_options_that_mean_nothing_here_say_so(app, start_worker):
    worker = start_worker("-O", "fair", "-E", "--without-gossip", "--without-mingle", "--without-heartbeat")
    log = worker.log()
    for expected in ("-O fair: ignored", "-E: task events are always sent", "--without-gossip:",
                     "--without-mingle:", "--without-heartbeat: ignored"):
        assert expected in log


@pytest.mark.parametrize(("option", "error"), [("--time-limit", "TimeLimitExceeded"),
                                               ("--soft-time-limit", "SoftTimeLimitExceeded")])
def test_time_limits_from_the_command_line(app, start_worker, option, error):
    import coreapp

    start_worker(option, "1", "-c", "1")
    with pytest.raises(RemoteTaskError) as info:
        coreapp.sleep.delay(10).get(timeout=20)
    assert type(info.value).__name__ == error, repr(info.value)


def _pool_size(pid: int) -> int:
    return len(psutil.Process(pid).children())


def test_autoscale_grows_with_waiting_work_and_shrinks_when_idle(app, start_worker, tmp_path):
    import coreapp

    worker = start_worker("--autoscale=3,1", "--prefetch-multiplier", "1",
                          env={"CELERIAC_TEST_AUTOSCALE_KEEPALIVE": "1"})
    assert _pool_size(worker.pid) == 1
    assert "{min=1, max=3}" in worker.log()
    results = [coreapp.sleep.delay(2.0, f"t{i}") for i in range(8)]
    wait_until(lambda: _pool_size(worker.pid) == 3, 20, message="pool grown to 3")
    for r in results:
        r.get(timeout=40)
    wait_until(lambda: _pool_size(worker.pid) == 1, 30, message="pool shrunk back to 1")


def _gone(pid: int) -> bool:
    """Exited (a detached worker's zombie may wait for a reaper that is not us)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_multi_start_stopwait_with_pid_and_log_files(app, broker_url, tmp_path):
    import coreapp

    args = ["-A", "coreapp", "-c", "1", "-l", "info", "--pidfile=run/%n.pid", "--logfile=log/%n%I.log"]
    try:
        out = _cli("multi", "start", "alpha", "beta", *args, cwd=tmp_path, broker_url=broker_url)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "> alpha@" in out.stdout and "OK" in out.stdout
        pids = {}
        for name in ("alpha", "beta"):
            pidfile = tmp_path / "run" / f"{name}.pid"
            pids[name] = int(pidfile.read_text())
            assert psutil.pid_exists(pids[name])
        logs = [tmp_path / "log" / f"{n}.log" for n in pids]
        wait_until(lambda: all(log.exists() and " ready." in log.read_text() for log in logs), 30,
                   message="both nodes ready")
        assert coreapp.add.delay(2, 3).get(timeout=20) == 5
        again = _cli("multi", "start", "alpha", *args, cwd=tmp_path, broker_url=broker_url)
        assert "already running" in again.stdout
        restarted = _cli("multi", "restart", "alpha", *args, cwd=tmp_path, broker_url=broker_url)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        old_pid, pids["alpha"] = pids["alpha"], int((tmp_path / "run" / "alpha.pid").read_text())
        assert pids["alpha"] != old_pid and _gone(old_pid)
        out = _cli("multi", "stopwait", "alpha", "beta", *args, cwd=tmp_path, broker_url=broker_url)
        assert out.returncode == 0, out.stdout + out.stderr
        for name, pid in pids.items():
            assert _gone(pid)
            assert not (tmp_path / "run" / f"{name}.pid").exists()
    finally:  # a failed assertion must not leave detached workers behind
        for pidfile in (tmp_path / "run").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_multi_show_passes_extra_arguments_through(tmp_path, broker_url):
    out = _cli("multi", "show", "3", "-A", "proj", "-Q", "a,b", "--time-limit=30", cwd=tmp_path,
               broker_url=broker_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    assert "-A proj worker -n celeriac1@" in lines[0]
    assert lines[2].endswith("--pidfile=%n.pid --logfile=%n%I.log -Q a,b --time-limit=30")


def test_result_shows_state_worker_value_and_traceback(app, start_worker, tmp_path, broker_url):
    import coreapp

    start_worker(name="reporter")
    ok = coreapp.add.delay(40, 2)
    ok.get(timeout=20)
    out = _cli("-A", "coreapp", "result", ok.id, cwd=tmp_path, broker_url=broker_url)
    assert out.returncode == 0 and out.stdout.strip() == "42"
    assert out.stderr.strip().startswith("SUCCESS on reporter@")
    bad = coreapp.fail.delay("the disk is full")
    with pytest.raises(ValueError):
        bad.get(timeout=20)
    out = _cli("-A", "coreapp", "result", bad.id, "--traceback", cwd=tmp_path, broker_url=broker_url)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("FAILURE on reporter@")
    assert "Traceback" in out.stdout and "ValueError: the disk is full" in out.stdout


def test_beat_refuses_a_database_scheduler_and_names_the_broker_schedule(tmp_path, broker_url):
    out = _cli("-A", "coreapp", "beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", cwd=tmp_path,
               broker_url=broker_url, timeout=30)
    assert out.returncode == 2
    assert "--scheduler django_celery_beat.schedulers:DatabaseScheduler is not supported" in out.stderr
    assert "celeriac.beat.Schedule(app).add(...)" in out.stderr
