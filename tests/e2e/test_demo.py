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
