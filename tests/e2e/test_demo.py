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
