"""The README's first command, headless: `celeriac demo --duration N` on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_headless_and_summarizes(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    env.pop("CELERIAC_BROKER_URL", None)
    out = subprocess.run([sys.executable, "-m", "celeriac", "demo", "--duration", "60"], env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert f"sqlite:///{tmp_path}/celeriac/demo.db" in text
    assert "tasks sent:       55" in text
    assert "success           54" in text  # the email to a dead mailbox fails after its retries
    assert "failure           1" in text
    assert "retries:          6" in text
    assert "every task reached a final state: nothing was lost" in text
    assert (tmp_path / "celeriac" / "demo.db").exists()


def test_a_demo_does_not_count_an_earlier_runs_leftovers(tmp_path):
    """An interrupted earlier run left tasks in the demo's broker: the next demo starts from an
    empty one, so its summary counts only its own work."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    env.pop("CELERIAC_BROKER_URL", None)
    leftovers = (
        "from celeriac.demo.tasks import app, save_chat_history\n"
        f"app.conf.broker_url = 'sqlite:///{tmp_path}/celeriac/demo.db'\n"
        "for user in range(500):\n"
        "    save_chat_history.delay(user)\n"
    )
    (tmp_path / "celeriac").mkdir()
    subprocess.run([sys.executable, "-c", leftovers], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-m", "celeriac", "demo", "--duration", "60"], env=env,
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "demo.save_chat_history       ran  40x" in out.stdout, out.stdout
    assert "every task reached a final state: nothing was lost" in out.stdout


def test_the_demo_serves_the_dashboard_and_seed_004s_curl_calls_work(tmp_path):
    """Seed 004 runs `curl :5555/api/task/info/<id>`, `/api/tasks` and `/api/workers` against Flower."""
    import json
    import re
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    env.pop("CELERIAC_BROKER_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "celeriac", "demo", "--duration", "25", "--dashboard-port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        url = None
        for _ in range(50):
            line = proc.stdout.readline()
            found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "the demo did not print the dashboard's URL"

        def curl(path: str) -> dict:
            out = subprocess.run(["curl", "-s", "-f", url + path], capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, (path, out.stderr)
            return json.loads(out.stdout)

        deadline = time.monotonic() + 20
        tasks: dict = {}
        while not tasks and time.monotonic() < deadline:
            tasks = curl("/api/tasks")
            time.sleep(0.3)
        assert tasks, "no task reached the dashboard"
        task_id = next(iter(tasks))
        assert curl(f"/api/task/info/{task_id}")["uuid"] == task_id
        workers = curl("/api/workers")
        assert any(name.startswith("demo@") for name in workers), workers
    finally:
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
